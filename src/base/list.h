/* Intrusive doubly linked list: nodes live inside their owners, so joining allocates nothing. */
#ifndef SSE_LIST_H
#define SSE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

/** A list head is a node whose prev/next point to itself when empty. */
static inline void list_init(list_node_t *head)
{
    head->prev = head->next = head;
}

static inline bool list_empty(const list_node_t *head)
{
    return head->next == head;
}

/** True when the node is linked into some list (nodes are cleared on removal). */
static inline bool list_linked(const list_node_t *n)
{
    return n->next != NULL;
}

static inline void list_push_back(list_node_t *head, list_node_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

static inline void list_remove(list_node_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/** Removes the node from its list if it is in one. */
static inline void list_unlink(list_node_t *n)
{
    if (list_linked(n)) list_remove(n);
}

#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
