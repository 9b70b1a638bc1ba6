/* Doubly linked LIST_ENTRY lists, as the kernel's. Not installed. */
#ifndef UWDF_LISTS_H
#define UWDF_LISTS_H

#include <stdbool.h>

#include <ntdef.h>

static inline void uwdf_list_init(LIST_ENTRY *head)
{
    head->Flink = head->Blink = head;
}
static inline bool uwdf_list_empty(const LIST_ENTRY *head)
{
    return head->Flink == head;
}
static inline void uwdf_list_insert_tail(LIST_ENTRY *head, LIST_ENTRY *e)
{
    e->Blink = head->Blink;
    e->Flink = head;
    head->Blink->Flink = e;
    head->Blink = e;
}
static inline void uwdf_list_remove(LIST_ENTRY *e)
{
    e->Blink->Flink = e->Flink;
    e->Flink->Blink = e->Blink;
    e->Flink = e->Blink = e;
}
static inline LIST_ENTRY *uwdf_list_pop_head(LIST_ENTRY *head)
{
    LIST_ENTRY *e = head->Flink;
    if (e == head)
        return NULL;
    uwdf_list_remove(e);
    return e;
}

#endif
