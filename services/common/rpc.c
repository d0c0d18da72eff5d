#include "rpc.h"

#include <stdio.h>
#include <string.h>

enum ej_status ej_rpc_service_name(const ProtobufCServiceDescriptor *svc, char *out, size_t size,
                                   struct ej_err *err)
{
        const char *name = svc ? svc->short_name : NULL;
        size_t n = name ? strlen(name) : 0;

        if (size > 0)
                out[0] = '\0';
        if (n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "a service descriptor is missing");
        if (n >= size)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "the service name %s is too long",
                                  name);
        for (size_t i = 0; i < n; i++) {
                char c = name[i];

                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
                        out[0] = '\0';
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "the service name %s is not letters, digits and '_'",
                                          name);
                }
                out[i] = c;
        }
        out[n] = '\0';
        return EJ_OK;
}

const ProtobufCMethodDescriptor *ej_rpc_method(const ProtobufCServiceDescriptor *svc,
                                               const char *name)
{
        if (svc == NULL || name == NULL)
                return NULL;
        /* A plain scan: tables are short and this runs at start-up only. */
        for (unsigned i = 0; i < svc->n_methods; i++)
                if (strcmp(svc->methods[i].name, name) == 0)
                        return &svc->methods[i];
        return NULL;
}

enum ej_status ej_rpc_subject(const char *service, const char *method, char *out, size_t size,
                              struct ej_err *err)
{
        int n = snprintf(out, size, "ej.%s.%s", service, method);

        if (n < 0 || (size_t)n >= size)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "the subject ej.%s.%s is too long",
                                  service, method);
        return EJ_OK;
}
