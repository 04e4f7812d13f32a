/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Doubly linked lists whose links live inside the items, in the style of systemd's
 * list.h: a struct carries LIST_FIELDS(Type, name), its owner a head pointer.
 *
 *     struct Worker { LIST_FIELDS(Worker, workers); ... };
 *     Worker *workers = NULL;
 *     LIST_PREPEND(workers, workers, w);
 *     LIST_FOREACH(workers, i, workers) ...
 */

#include <assert.h>
#include <stddef.h>

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_INIT(name, item)                                           \
        do {                                                            \
                __typeof__(*(item)) *_item_ = (item);                   \
                assert(_item_);                                         \
                _item_->name##_prev = _item_->name##_next = NULL;       \
        } while (0)

#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                __typeof__(*(head)) **_head_ = &(head), *_item_ = (item); \
                assert(_item_);                                         \
                if ((_item_->name##_next = *_head_))                    \
                        _item_->name##_next->name##_prev = _item_;      \
                _item_->name##_prev = NULL;                             \
                *_head_ = _item_;                                       \
        } while (0)

#define LIST_APPEND(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_hd_ = &(head), *_tail_ = *_hd_, *_it_ = (item); \
                assert(_it_);                                           \
                while (_tail_ && _tail_->name##_next)                   \
                        _tail_ = _tail_->name##_next;                   \
                _it_->name##_next = NULL;                               \
                _it_->name##_prev = _tail_;                             \
                if (_tail_)                                             \
                        _tail_->name##_next = _it_;                     \
                else                                                    \
                        *_hd_ = _it_;                                   \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                __typeof__(*(head)) **_head_ = &(head), *_item_ = (item); \
                assert(_item_);                                         \
                if (_item_->name##_next)                                \
                        _item_->name##_next->name##_prev = _item_->name##_prev; \
                if (_item_->name##_prev)                                \
                        _item_->name##_prev->name##_next = _item_->name##_next; \
                else {                                                  \
                        assert(*_head_ == _item_);                      \
                        *_head_ = _item_->name##_next;                  \
                }                                                       \
                _item_->name##_next = _item_->name##_prev = NULL;       \
        } while (0)

/* Inserts item b after item a, or at the head when a is NULL; with a pointer to the
 * tail kept beside the head, appending this way takes constant time. */
#define LIST_INSERT_AFTER(name, head, a, b)                             \
        do {                                                            \
                __typeof__(*(head)) **_head_ = &(head), *_a_ = (a), *_b_ = (b); \
                assert(_b_);                                            \
                if (!_a_) {                                             \
                        if ((_b_->name##_next = *_head_))               \
                                _b_->name##_next->name##_prev = _b_;    \
                        _b_->name##_prev = NULL;                        \
                        *_head_ = _b_;                                  \
                } else {                                                \
                        if ((_b_->name##_next = _a_->name##_next))      \
                                _b_->name##_next->name##_prev = _b_;    \
                        _b_->name##_prev = _a_;                         \
                        _a_->name##_next = _b_;                         \
                }                                                       \
        } while (0)

/* Removes the first item and returns it, or NULL when the list is empty. */
#define LIST_POP(name, head)                                            \
        ({                                                              \
                __typeof__(*(head)) **_pop_head_ = &(head), *_pop_item_ = *_pop_head_; \
                if (_pop_item_)                                         \
                        LIST_REMOVE(name, *_pop_head_, _pop_item_);     \
                _pop_item_;                                             \
        })

#define LIST_IS_EMPTY(head) (!(head))

#define LIST_FOREACH(name, i, head) for (__typeof__(*(head)) *i = (head); i; i = i->name##_next)

/* Safe against removing i inside the loop. */
#define LIST_FOREACH_SAFE(name, i, n, head)                                              \
        for (__typeof__(*(head)) *n, *i = (head); i && ((n = i->name##_next), 1); i = n)
