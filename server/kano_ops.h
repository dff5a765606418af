/* Kano survey, what clients do (PROTOCOL.md "Kano survey"): answer, reveal,
 * reset; the model is in kano.h. */
#ifndef REFINE_KANO_OPS_H
#define REFINE_KANO_OPS_H

#include <msgpack.h>

struct kano_survey;
struct req;
struct room;

/* Adds a survey to the room (takes it on success). Returns 0 or RF_ENOMEM
 * (the room unchanged). */
int kano_add(struct room *r, struct kano_survey *s);
/* Packs the room's surveys of items still in the backlog, oldest first. */
void kano_pack_all(const struct room *r, msgpack_packer *pk);

int kano_ops_answer(struct req *q);
int kano_ops_reveal(struct req *q);
int kano_ops_reset(struct req *q);

#endif
