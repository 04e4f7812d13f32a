/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "list.h"
#include "macro.h"
#include "tests.h"

typedef struct Item Item;
struct Item {
        int value;
        LIST_FIELDS(Item, items);
        LIST_FIELDS(Item, other); /* an item can be on two lists at once */
};

/* Walks the list both ways and compares it with expected (n values): every link must
 * agree with its neighbour's. */
static void assert_list(Item *head, const int *expected, size_t n) {
        Item *last = NULL;
        size_t i = 0;

        ck_assert(!head || !head->items_prev);
        LIST_FOREACH(items, it, head) {
                ck_assert_uint_lt(i, n);
                ck_assert_int_eq(it->value, expected[i]);
                ck_assert_ptr_eq(it->items_prev, last);
                last = it;
                i++;
        }
        ck_assert_uint_eq(i, n);
        for (Item *it = last; it; it = it->items_prev)
                ck_assert_int_eq(it->value, expected[--i]);
        ck_assert_uint_eq(i, 0);
}

static void init_items(Item *items, size_t n) {
        for (size_t i = 0; i < n; i++) {
                items[i] = (Item) { .value = (int) i };
                LIST_INIT(items, &items[i]);
                LIST_INIT(other, &items[i]);
        }
}

START_TEST(test_prepend_append) {
        Item it[4], *head = NULL;

        init_items(it, ELEMENTSOF(it));
        ck_assert(LIST_IS_EMPTY(head));
        assert_list(head, NULL, 0);

        LIST_PREPEND(items, head, &it[1]);
        assert_list(head, (const int[]) { 1 }, 1);
        LIST_PREPEND(items, head, &it[0]);
        assert_list(head, (const int[]) { 0, 1 }, 2);
        LIST_APPEND(items, head, &it[2]);
        LIST_APPEND(items, head, &it[3]);
        assert_list(head, (const int[]) { 0, 1, 2, 3 }, 4);
        ck_assert(!LIST_IS_EMPTY(head));

        /* Appending to an empty list sets the head. */
        Item *other = NULL;
        LIST_APPEND(other, other, &it[2]);
        ck_assert_ptr_eq(other, &it[2]);
        ck_assert_ptr_null(it[2].other_next);
        ck_assert_ptr_null(it[2].other_prev);
        /* ...and leaves the first list alone. */
        assert_list(head, (const int[]) { 0, 1, 2, 3 }, 4);
}
END_TEST

START_TEST(test_remove) {
        Item it[4], *head = NULL;

        init_items(it, ELEMENTSOF(it));
        for (size_t i = 0; i < ELEMENTSOF(it); i++)
                LIST_APPEND(items, head, &it[i]);

        LIST_REMOVE(items, head, &it[2]); /* the middle */
        assert_list(head, (const int[]) { 0, 1, 3 }, 3);
        ck_assert_ptr_null(it[2].items_next);
        ck_assert_ptr_null(it[2].items_prev);

        LIST_REMOVE(items, head, &it[0]); /* the head */
        assert_list(head, (const int[]) { 1, 3 }, 2);

        LIST_REMOVE(items, head, &it[3]); /* the tail */
        assert_list(head, (const int[]) { 1 }, 1);

        LIST_REMOVE(items, head, &it[1]); /* the last one */
        ck_assert_ptr_null(head);
        ck_assert(LIST_IS_EMPTY(head));
}
END_TEST

START_TEST(test_insert_after) {
        Item it[5], *head = NULL, *tail = NULL;

        init_items(it, ELEMENTSOF(it));

        /* After NULL: at the head, also of an empty list. */
        LIST_INSERT_AFTER(items, head, NULL, &it[3]);
        assert_list(head, (const int[]) { 3 }, 1);
        LIST_INSERT_AFTER(items, head, NULL, &it[0]);
        assert_list(head, (const int[]) { 0, 3 }, 2);

        /* In the middle and at the tail. */
        LIST_INSERT_AFTER(items, head, &it[0], &it[1]);
        assert_list(head, (const int[]) { 0, 1, 3 }, 3);
        LIST_INSERT_AFTER(items, head, &it[1], &it[2]);
        assert_list(head, (const int[]) { 0, 1, 2, 3 }, 4);
        LIST_INSERT_AFTER(items, head, &it[3], &it[4]);
        assert_list(head, (const int[]) { 0, 1, 2, 3, 4 }, 5);

        /* A queue: appended at a kept tail, popped at the head. */
        Item *queue = NULL;
        for (size_t i = 0; i < ELEMENTSOF(it); i++) {
                LIST_INSERT_AFTER(other, queue, tail, &it[i]);
                tail = &it[i];
        }
        for (size_t i = 0; i < ELEMENTSOF(it); i++)
                ck_assert_ptr_eq(LIST_POP(other, queue), &it[i]);
        ck_assert_ptr_null(queue);
}
END_TEST

START_TEST(test_pop) {
        Item it[3], *head = NULL, *p;

        init_items(it, ELEMENTSOF(it));
        ck_assert_ptr_null(LIST_POP(items, head));

        for (size_t i = 0; i < ELEMENTSOF(it); i++)
                LIST_APPEND(items, head, &it[i]);
        p = LIST_POP(items, head);
        ck_assert_ptr_eq(p, &it[0]);
        ck_assert_ptr_null(p->items_next);
        ck_assert_ptr_null(p->items_prev);
        assert_list(head, (const int[]) { 1, 2 }, 2);
        ck_assert_ptr_eq(LIST_POP(items, head), &it[1]);
        ck_assert_ptr_eq(LIST_POP(items, head), &it[2]);
        ck_assert_ptr_null(head);
        ck_assert_ptr_null(LIST_POP(items, head));
}
END_TEST

START_TEST(test_foreach_safe) {
        Item it[6], *head = NULL;
        int seen = 0;

        init_items(it, ELEMENTSOF(it));
        for (size_t i = 0; i < ELEMENTSOF(it); i++)
                LIST_APPEND(items, head, &it[i]);

        /* Removing the current item does not end the walk. */
        LIST_FOREACH_SAFE(items, i, n, head) {
                seen++;
                if (i->value % 2 == 0)
                        LIST_REMOVE(items, head, i);
        }
        ck_assert_int_eq(seen, 6);
        assert_list(head, (const int[]) { 1, 3, 5 }, 3);

        LIST_FOREACH_SAFE(items, i, n, head)
                LIST_REMOVE(items, head, i);
        ck_assert_ptr_null(head);
}
END_TEST

int main(void) {
        Suite *s = suite_create("list");
        TCase *tc = tcase_create("list");

        tcase_add_test(tc, test_prepend_append);
        tcase_add_test(tc, test_remove);
        tcase_add_test(tc, test_insert_after);
        tcase_add_test(tc, test_pop);
        tcase_add_test(tc, test_foreach_safe);
        suite_add_tcase(s, tc);
        return tests_run(s, CK_FORK_GETENV);
}
