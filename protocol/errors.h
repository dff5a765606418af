/* Refine error codes, shared by the protocol library and the server.
 *
 * Functions return 0 on success or one of these negative codes. Every code
 * that reaches a client has the name of the protocol's error code. */
#ifndef REFINE_ERRORS_H
#define REFINE_ERRORS_H

enum rf_err {
    RF_OK = 0,
    RF_EBAD_REQUEST = -1,
    RF_EUNKNOWN_OP = -2,
    RF_ENOT_JOINED = -3,
    RF_EAUTH_FAILED = -4,
    RF_EFORBIDDEN = -5,
    RF_ENOT_FOUND = -6,
    RF_ECONFLICT = -7,
    RF_ETOO_LARGE = -8,
    RF_ERATE_LIMITED = -9,
    RF_EROOM_FULL = -10,
    RF_EINTERNAL = -11,
    RF_ENOMEM = -12, /* reaches clients as "internal" */
    RF_EWRONG_INSTANCE = -13,

    /* The room moved to another instance (the reply names its new id and home). */
    RF_EMOVED = -14,
    /* The room is being moved to another instance: try again in a moment. */
    RF_EUNAVAILABLE = -15,
};

/* The protocol's name for an error code ("bad_request", ...). Never NULL. */
const char *rf_err_code(int err);

#endif
