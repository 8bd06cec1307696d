/* problem.c - RFC 9457 problem documents: results whose body is a JSON
 * object kept as JSON until the response is built, so that middleware and
 * error handlers can add members to it, and the error handler that makes
 * every library error one. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <string.h>

#include <microhttpd.h>

#include "model/result.h"

vg_result *vg_problem(unsigned status, const char *detail)
{
    vg_result *res = vg_status(status);
    json_t *doc;

    if (res == NULL)
        return NULL;
    doc = json_pack("{s:s, s:s, s:I}", "type", "about:blank", "title",
                    MHD_get_reason_phrase_for(status), "status",
                    (json_int_t)status);
    if (doc != NULL && detail != NULL &&
        json_object_set_new(doc, "detail", json_string(detail)) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    res = vg_result_set_header(res, "Content-Type", "application/problem+json");
    if (doc == NULL || res == NULL) {
        json_decref(doc);
        vg_result_free(res);
        errno = ENOMEM;
        return NULL;
    }
    res->problem = doc;
    return res;
}

vg_result *vg_problem_set(vg_result *res, const char *member, json_t *value)
{
    if (res == NULL || vg_result_is_deferred(res)) {
        json_decref(value);
        return res;
    }
    /* "status" must stay the response's own status. */
    if (res->problem == NULL || member == NULL || value == NULL ||
        strcmp(member, "status") == 0) {
        json_decref(value);
        vg_result_free(res);
        errno = EINVAL;
        return NULL;
    }
    if (json_object_set_new(res->problem, member, value) != 0) {
        vg_result_free(res);
        errno = ENOMEM;
        return NULL;
    }
    return res;
}

/* The error handler of vg_app_use_problem_details: the library's error as
 * a problem document, with the reason when the answer comes from a
 * cancellation (deadline, shutdown). */
static vg_result *vg__problem_error(const vg_request *req, unsigned status,
                                    const char *detail, void *arg)
{
    vg_cancel_reason why =
        vg_token_reason(vg_request_token((vg_request *)req));
    vg_result *res = vg_problem(status, detail);

    (void)arg;
    if ((status == 504 && why == VG_CANCEL_TIMEOUT) ||
        (status == 503 && why == VG_CANCEL_SHUTDOWN))
        res = vg_problem_set(res, "cancelled",
                             json_string(vg_cancel_reason_name(why)));
    return res;
}

int vg_app_use_problem_details(vg_app *app)
{
    return vg_app_set_error_handler(app, vg__problem_error, NULL);
}
