/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

typedef struct Node {
        struct Node *left, *right;
        uint32_t priority;
        uint32_t key_size;
        char key[];
} Node;

struct KeyOrder {
        Node *root;
        size_t n;
};

KeyOrder *key_order_new(void) {
        return calloc(1, sizeof(KeyOrder));
}

static void node_free_all(Node *n) {
        while (n) {
                Node *right = n->right;

                node_free_all(n->left);
                free(n);
                n = right;
        }
}

KeyOrder *key_order_free(KeyOrder *o) {
        if (!o)
                return NULL;
        node_free_all(o->root);
        return mfree(o);
}

static int compare(const void *a, size_t a_size, const void *b, size_t b_size) {
        int c = memcmp(a, b, MIN(a_size, b_size));

        if (c != 0)
                return c;
        return a_size < b_size ? -1 : a_size > b_size;
}

static Node *insert(Node *t, Node *n, bool *added) {
        int c;

        if (!t) {
                *added = true;
                return n;
        }
        c = compare(n->key, n->key_size, t->key, t->key_size);
        if (c == 0)
                return t;
        if (c < 0) {
                t->left = insert(t->left, n, added);
                if (t->left->priority > t->priority) {
                        Node *l = t->left;

                        t->left = l->right;
                        l->right = t;
                        return l;
                }
        } else {
                t->right = insert(t->right, n, added);
                if (t->right->priority > t->priority) {
                        Node *r = t->right;

                        t->right = r->left;
                        r->left = t;
                        return r;
                }
        }
        return t;
}

int key_order_insert(KeyOrder *o, const void *key, size_t key_size, uint32_t priority) {
        bool added = false;
        Node *n;

        assert(o);
        if (key_size > UINT32_MAX)
                return -E2BIG;
        n = malloc(offsetof(Node, key) + MAX(key_size, (size_t) 1));
        if (!n)
                return -ENOMEM;
        *n = (Node) { .priority = priority, .key_size = (uint32_t) key_size };
        if (key_size > 0)
                memcpy(n->key, key, key_size);
        o->root = insert(o->root, n, &added);
        if (!added)
                free(n);
        else
                o->n++;
        return 0;
}

int key_order_build(KeyOrder *o, const KeyOrderItem *items, size_t n) {
        _cleanup_free_ Node **spine = NULL;
        size_t depth = 0;

        assert(o);
        assert(!o->root);

        /* The treap of sorted keys is their Cartesian tree by priority: each key goes at
         * the end of the right spine, taking the lower-priority tail of it as its left. */
        spine = calloc(MAX(n, (size_t) 1), sizeof(Node *));
        if (!spine)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                Node *node, *last = NULL;

                if (items[i].key_size > UINT32_MAX)
                        goto fail;
                node = malloc(offsetof(Node, key) + MAX(items[i].key_size, (size_t) 1));
                if (!node)
                        goto fail;
                *node = (Node) { .priority = items[i].priority, .key_size = (uint32_t) items[i].key_size };
                if (items[i].key_size > 0)
                        memcpy(node->key, items[i].key, items[i].key_size);
                while (depth > 0 && spine[depth - 1]->priority < node->priority)
                        last = spine[--depth];
                node->left = last;
                if (depth > 0)
                        spine[depth - 1]->right = node;
                else
                        o->root = node;
                spine[depth++] = node;
                o->n++;
        }
        return 0;

fail:
        node_free_all(o->root);
        o->root = NULL;
        o->n = 0;
        return -ENOMEM;
}

/* Joins two treaps, every key of a below every key of b. */
static Node *merge(Node *a, Node *b) {
        if (!a)
                return b;
        if (!b)
                return a;
        if (a->priority > b->priority) {
                a->right = merge(a->right, b);
                return a;
        }
        b->left = merge(a, b->left);
        return b;
}

static Node *remove_key(Node *t, const void *key, size_t key_size, bool *removed) {
        int c;

        if (!t)
                return NULL;
        c = compare(key, key_size, t->key, t->key_size);
        if (c < 0)
                t->left = remove_key(t->left, key, key_size, removed);
        else if (c > 0)
                t->right = remove_key(t->right, key, key_size, removed);
        else {
                Node *m = merge(t->left, t->right);

                free(t);
                *removed = true;
                return m;
        }
        return t;
}

void key_order_remove(KeyOrder *o, const void *key, size_t key_size) {
        bool removed = false;

        assert(o);
        o->root = remove_key(o->root, key, key_size, &removed);
        if (removed)
                o->n--;
}

size_t key_order_size(const KeyOrder *o) {
        assert(o);
        return o->n;
}

typedef struct Walk {
        const char *prefix, *after;
        size_t prefix_size, after_size;
        key_order_cb cb;
        void *userdata;
        bool past_prefix;
} Walk;

/* Whether the key sorts at or below where the walk starts: after after, and not below
 * prefix (every key that starts with it sorts at or above it). */
static bool below_start(const Walk *w, const Node *n) {
        if (w->after && compare(n->key, n->key_size, w->after, w->after_size) <= 0)
                return true;
        return w->prefix_size > 0 && compare(n->key, n->key_size, w->prefix, w->prefix_size) < 0;
}

static int walk(Walk *w, const Node *t) {
        int r;

        while (t) {
                if (below_start(w, t)) {
                        t = t->right;
                        continue;
                }
                r = walk(w, t->left);
                if (r != 0)
                        return r;
                /* Past the keys of the prefix: nothing after can start with it. */
                if (w->prefix_size > 0 &&
                    (t->key_size < w->prefix_size || memcmp(t->key, w->prefix, w->prefix_size) != 0)) {
                        w->past_prefix = true;
                        return 1;
                }
                r = w->cb(t->key, t->key_size, w->userdata);
                if (r != 0)
                        return r;
                t = t->right;
        }
        return 0;
}

int key_order_walk(KeyOrder *o, const void *prefix, size_t prefix_size, const void *after, size_t after_size,
                   key_order_cb cb, void *userdata) {
        Walk w = {
                .prefix = prefix,
                .prefix_size = prefix_size,
                .after = after,
                .after_size = after_size,
                .cb = cb,
                .userdata = userdata,
        };
        int r;

        assert(o);
        assert(cb);
        r = walk(&w, o->root);
        /* The end of the prefix is the end of the walk, not the callback's word. */
        return w.past_prefix ? 0 : r;
}
