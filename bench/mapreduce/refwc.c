/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-refwc FILE...: the word count the MapReduce benchmark measures mrkv against. One
 * thread, one pass over each file in 1 MiB reads, one open-addressing hash table; prints
 * "word count" lines (in table order) like wc's mr-out files. Words are maximal runs of
 * [A-Za-z], as the wc app counts them. It shares no code with mrkv on purpose: it is the
 * floor of what any word count on this machine costs, not another build of mrkv's. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

typedef struct Entry {
        uint64_t hash;
        char *word; /* NULL: empty slot */
        size_t len;
        uint64_t count;
} Entry;

static Entry *table;
static size_t table_size = 1u << 16, table_used;

static bool is_letter(unsigned char c) {
        return (unsigned char) ((c | 0x20) - 'a') < 26;
}

static uint64_t hash_word(const char *w, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char) w[i]) * 0x100000001b3ULL;
        return h;
}

static void die(const char *what) {
        fprintf(stderr, "mrkv-refwc: %s: %s\n", what, strerror(errno));
        exit(EXIT_FAILURE);
}

static void grow(void) {
        size_t n = table_size * 2;
        Entry *t = calloc(n, sizeof(Entry));

        if (!t)
                die("calloc");
        for (size_t i = 0; i < table_size; i++) {
                if (!table[i].word)
                        continue;
                size_t j = table[i].hash & (n - 1);
                while (t[j].word)
                        j = (j + 1) & (n - 1);
                t[j] = table[i];
        }
        free(table);
        table = t;
        table_size = n;
}

static void count(const char *w, size_t n) {
        uint64_t h = hash_word(w, n);
        size_t i = h & (table_size - 1);

        for (; table[i].word; i = (i + 1) & (table_size - 1))
                if (table[i].hash == h && table[i].len == n && memcmp(table[i].word, w, n) == 0) {
                        table[i].count++;
                        return;
                }
        table[i] = (Entry) { .hash = h, .word = strndup(w, n), .len = n, .count = 1 };
        if (!table[i].word)
                die("strndup");
        if (++table_used * 2 > table_size)
                grow();
}

/* Counts the words of buf[0..size); returns how many bytes at the end are the start of a
 * word that may go on in the next read (0 at the end of the file). */
static size_t scan(const char *buf, size_t size, bool last) {
        size_t i = 0;

        for (;;) {
                while (i < size && !is_letter(buf[i]))
                        i++;
                size_t start = i;
                while (i < size && is_letter(buf[i]))
                        i++;
                if (i == start)
                        return 0;
                if (i == size && !last)
                        return size - start;
                count(buf + start, i - start);
                if (i == size)
                        return 0;
        }
}

int main(int argc, char *argv[]) {
        size_t cap = 2 * CHUNK;
        char *buf = malloc(cap);

        table = calloc(table_size, sizeof(Entry));
        if (!buf || !table)
                die("malloc");

        for (int a = 1; a < argc; a++) {
                int fd = open(argv[a], O_RDONLY | O_CLOEXEC);
                size_t have = 0;

                if (fd < 0)
                        die(argv[a]);
                for (;;) {
                        if (have + CHUNK > cap) { /* a word longer than a read */
                                cap *= 2;
                                buf = realloc(buf, cap);
                                if (!buf)
                                        die("realloc");
                        }
                        ssize_t n = read(fd, buf + have, CHUNK);
                        if (n < 0)
                                die(argv[a]);
                        size_t keep = scan(buf, have + (size_t) n, n == 0);
                        if (n == 0)
                                break;
                        memmove(buf, buf + have + (size_t) n - keep, keep);
                        have = keep;
                }
                close(fd);
        }

        for (size_t i = 0; i < table_size; i++)
                if (table[i].word)
                        printf("%.*s %" PRIu64 "\n", (int) table[i].len, table[i].word, table[i].count);
        if (fflush(stdout) != 0)
                die("stdout");
        return EXIT_SUCCESS;
}
