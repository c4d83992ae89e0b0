/*
 * instance.h - one Postfix message transaction as the checks see it: the
 * client of the requests that share instance= (and client and sender),
 * the stages already judged, the connect/HELO refusal held for RCPT (as
 * in an SMTP session), and what the transaction counts in the statistics.
 */
#ifndef MX_POLICYSRV_INSTANCE_H
#define MX_POLICYSRV_INSTANCE_H

struct policysrv_env;
struct policysrv_req;
struct policysrv_instance;

/* policysrv_instance_new - a transaction for the client, HELO, login and sender of r */
struct policysrv_instance *policysrv_instance_new(const struct policysrv_env *env,
                                                  const struct policysrv_req *r);
/* policysrv_instance_same - does r belong to the transaction (same instance=, client,
 * login, and HELO and sender once known; a request without instance= never does) */
int policysrv_instance_same(const struct policysrv_instance *ins, const struct policysrv_req *r);

typedef void (*policysrv_answer_fn)(void *arg, const char *action);
/* policysrv_instance_judge - run the stages r's protocol_state needs that have not run
 * yet; answer(arg, action) once, never from inside this call. r stays valid until then. */
void policysrv_instance_judge(struct policysrv_instance *ins, const struct policysrv_req *r,
                              policysrv_answer_fn answer, void *arg);
/* policysrv_instance_end - the transaction is over (a new one, or the connection closed):
 * pending checks cancelled, the checks told, the statistics counted, ins freed */
void policysrv_instance_end(struct policysrv_instance *ins);

#endif
