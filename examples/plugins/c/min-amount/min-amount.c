/*
 * min-amount: a filter that keeps events whose after.amount is a JSON number
 * at or above config.min. Numbers are compared exactly, as decimals.
 *
 * Config: {"min": <number>} (required: anything else is a bad_config error).
 * An event without an after image, without an amount, or with an amount
 * that is not a number is dropped with a reason saying so.
 */
#include "observer.h"

static int min_amount(obs_call *c) {
    obs_value min = obs_get(obs_config(c), "min");
    if (min.type != OBS_NUMBER)
        return obs_error(c, OBS_BAD_CONFIG, "config.min: want a number, got %s", obs_type_name(min.type));

    obs_value after = obs_get(obs_event(c), "after");
    if (after.type != OBS_OBJECT) return obs_drop(c, "no after image (after is %s), so no amount", obs_type_name(after.type));
    obs_value amount = obs_member(after, "amount");
    if (amount.type == OBS_MISSING) return obs_drop(c, "after has no amount");
    if (amount.type != OBS_NUMBER) return obs_drop(c, "after.amount is a %s, not a number", obs_type_name(amount.type));

    if (obs_num_cmp(amount, min) >= 0)
        return obs_pass(c, "after.amount = %.*s >= %.*s", OBS_TEXT(amount), OBS_TEXT(min));
    return obs_drop(c, "after.amount = %.*s < %.*s", OBS_TEXT(amount), OBS_TEXT(min));
}

OBSERVER_PLUGIN(
    .name = "min-amount",
    .version = "1.0.0",
    .description = "keeps events whose after.amount is at least config.min (exact decimals)",
    .filter = min_amount,
)
