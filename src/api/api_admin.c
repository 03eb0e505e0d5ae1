/* POST /admin/stop: an admin asks the server to stop gracefully. */
#include <time.h>

#include "api.h"
#include "auth.h"
#include "auth_request.h"
#include "log.h"
#include "respond.h"

void api_admin_stop(api_ctx_t *a, conn_t *c, const http_request_t *req)
{
    identity_t id;
    /* goSSE answers 401 to every account but the admin; so do we. */
    if (auth_request(a->cfg, req, time(NULL), 1, &id) || id.role != ROLE_ADMIN) {
        if (id.user_id) identity_free(&id);
        respond_error(c, req, 401, "an admin's Bearer token is required");
        return;
    }
    log_info(a->log, "stop-requested ip=%s account=%s", c->ip, id.username);
    identity_free(&id);
    respond_json(c, req, 200, json_pack("{s:s}", "status", "stopping"));
    conn_end(c);
    a->ops->request_stop(a);
}
