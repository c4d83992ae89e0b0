/* edit.c - the changes to the stored message a check asks for (policy_edit, policy.h) */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* edit_get - cl's edit, made on first use */
static struct policy_edit *edit_get(struct policy_client *cl, const char *by)
{
    if (!cl->edit)
        cl->edit = xcalloc(1, sizeof(*cl->edit));
    if (!cl->edit->by[0])
        snprintf(cl->edit->by, sizeof(cl->edit->by), "%s", by);
    return cl->edit;
}

int policy_edit_field(struct policy_client *cl, const char *by, const char *name, unsigned index,
                      const char *value)
{
    struct policy_edit *e = edit_get(cl, by);
    struct policy_edit_field *f;

    if (e->nfields >= POLICY_EDIT_FIELDS_MAX)
        return -1;
    e->fields = xrealloc(e->fields, (e->nfields + 1) * sizeof(*e->fields));
    f = &e->fields[e->nfields++];
    f->name = xstrdup(name);
    f->index = index ? index : 1;
    f->value = value ? xstrdup(value) : NULL;
    return 0;
}

int policy_edit_body(struct policy_client *cl, const char *by, const void *data, size_t len,
                     size_t max)
{
    struct policy_edit *e = edit_get(cl, by);

    if (len > max || e->body_len > max - len)
        return -1;
    e->body = xrealloc(e->body, e->body_len + len + 1);
    if (len)
        memcpy(e->body + e->body_len, data, len);
    e->body_len += len;
    e->body[e->body_len] = '\0';
    e->body_set = 1;
    return 0;
}

void policy_edit_free(struct policy_edit *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nfields; i++) {
        free(e->fields[i].name);
        free(e->fields[i].value);
    }
    free(e->fields);
    free(e->body);
    free(e);
}
