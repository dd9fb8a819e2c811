/*
 * Cyrus SASL stand-ins for the fully static build (DAMSELFLY_STATIC=ON only).
 *
 * Debian's librdkafka.a is built with Cyrus SASL, which it uses for exactly one mechanism:
 * GSSAPI (Kerberos). Cyrus SASL loads its mechanisms as plugins with dlopen(), which a static
 * binary cannot do, so the static build links these stubs instead of libsasl2:
 *
 *   - sasl.mechanisms=GSSAPI is unavailable: connecting fails with the message below.
 *   - PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER are implemented inside librdkafka itself and
 *     keep working, as do TLS (OpenSSL) and plaintext connections.
 *
 * These are exactly the symbols librdkafka.a leaves undefined
 * (nm -u librdkafka.a | grep ' sasl_'). sasl_client_init() succeeds so that librdkafka's
 * global initialisation stays quiet; everything that would start a GSSAPI exchange fails.
 * The types are opaque here: no Cyrus SASL headers are needed.
 */
#include <stddef.h>

#define STUB_SASL_OK 0
#define STUB_SASL_FAIL (-1)
#define STUB_SASL_NOMECH (-4)

struct sasl_conn;
struct sasl_callback;
struct sasl_interact;

static const char stub_reason[] =
    "SASL GSSAPI (Kerberos) is not available in the static build of Damselfly; "
    "use sasl.mechanisms PLAIN or SCRAM, or the dynamically linked build";

int sasl_client_init(const struct sasl_callback *callbacks);
int sasl_client_new(const char *service, const char *server_fqdn, const char *iplocalport,
                    const char *ipremoteport, const struct sasl_callback *prompt_supp,
                    unsigned flags, struct sasl_conn **pconn);
int sasl_client_start(struct sasl_conn *conn, const char *mechlist,
                      struct sasl_interact **prompt_need, const char **clientout,
                      unsigned *clientoutlen, const char **mech);
int sasl_client_step(struct sasl_conn *conn, const char *serverin, unsigned serverinlen,
                     struct sasl_interact **prompt_need, const char **clientout,
                     unsigned *clientoutlen);
void sasl_dispose(struct sasl_conn **pconn);
const char *sasl_errdetail(struct sasl_conn *conn);
const char *sasl_errstring(int saslerr, const char *langlist, const char **outlang);
int sasl_getprop(struct sasl_conn *conn, int propnum, const void **pvalue);
int sasl_listmech(struct sasl_conn *conn, const char *user, const char *prefix, const char *sep,
                  const char *suffix, const char **result, unsigned *plen, int *pcount);

int sasl_client_init(const struct sasl_callback *callbacks)
{
    (void)callbacks;
    return STUB_SASL_OK;
}

int sasl_client_new(const char *service, const char *server_fqdn, const char *iplocalport,
                    const char *ipremoteport, const struct sasl_callback *prompt_supp,
                    unsigned flags, struct sasl_conn **pconn)
{
    (void)service, (void)server_fqdn, (void)iplocalport, (void)ipremoteport, (void)prompt_supp,
        (void)flags;
    if (pconn)
        *pconn = NULL;
    return STUB_SASL_NOMECH;
}

int sasl_client_start(struct sasl_conn *conn, const char *mechlist,
                      struct sasl_interact **prompt_need, const char **clientout,
                      unsigned *clientoutlen, const char **mech)
{
    (void)conn, (void)mechlist, (void)prompt_need;
    if (clientout)
        *clientout = NULL;
    if (clientoutlen)
        *clientoutlen = 0;
    if (mech)
        *mech = NULL;
    return STUB_SASL_NOMECH;
}

int sasl_client_step(struct sasl_conn *conn, const char *serverin, unsigned serverinlen,
                     struct sasl_interact **prompt_need, const char **clientout,
                     unsigned *clientoutlen)
{
    (void)conn, (void)serverin, (void)serverinlen, (void)prompt_need;
    if (clientout)
        *clientout = NULL;
    if (clientoutlen)
        *clientoutlen = 0;
    return STUB_SASL_FAIL;
}

void sasl_dispose(struct sasl_conn **pconn)
{
    if (pconn)
        *pconn = NULL;
}

const char *sasl_errdetail(struct sasl_conn *conn)
{
    (void)conn;
    return stub_reason;
}

const char *sasl_errstring(int saslerr, const char *langlist, const char **outlang)
{
    (void)langlist;
    if (outlang)
        *outlang = "en-us";
    return saslerr == STUB_SASL_OK ? "successful result" : stub_reason;
}

int sasl_getprop(struct sasl_conn *conn, int propnum, const void **pvalue)
{
    (void)conn, (void)propnum;
    if (pvalue)
        *pvalue = NULL;
    return STUB_SASL_FAIL;
}

int sasl_listmech(struct sasl_conn *conn, const char *user, const char *prefix, const char *sep,
                  const char *suffix, const char **result, unsigned *plen, int *pcount)
{
    (void)conn, (void)user, (void)prefix, (void)sep, (void)suffix;
    if (result)
        *result = NULL;
    if (plen)
        *plen = 0;
    if (pcount)
        *pcount = 0;
    return STUB_SASL_FAIL;
}
