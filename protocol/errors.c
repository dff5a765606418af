#include "errors.h"

const char *rf_err_code(int err)
{
    switch (err) {
    case RF_EBAD_REQUEST:
        return "bad_request";
    case RF_EUNKNOWN_OP:
        return "unknown_op";
    case RF_ENOT_JOINED:
        return "not_joined";
    case RF_EAUTH_FAILED:
        return "auth_failed";
    case RF_EFORBIDDEN:
        return "forbidden";
    case RF_ENOT_FOUND:
        return "not_found";
    case RF_ECONFLICT:
        return "conflict";
    case RF_ETOO_LARGE:
        return "too_large";
    case RF_ERATE_LIMITED:
        return "rate_limited";
    case RF_EROOM_FULL:
        return "room_full";
    case RF_EWRONG_INSTANCE:
        return "wrong_instance";
    case RF_EMOVED:
        return "moved";
    case RF_EUNAVAILABLE:
        return "unavailable";
    default:
        return "internal";
    }
}
