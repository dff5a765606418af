/* The operations clients send about rooms and participants: room.create,
 * join, role.set, room.update, role.claim, token.rotate. dispatch.c calls
 * them through the operation table (req.h). */
#ifndef REFINE_ROOM_OPS_H
#define REFINE_ROOM_OPS_H

struct req;

int room_ops_create(struct req *q);
int room_ops_join(struct req *q);
int room_ops_role_set(struct req *q);
int room_ops_update(struct req *q);
int room_ops_claim(struct req *q);
int room_ops_token_rotate(struct req *q);

#endif
