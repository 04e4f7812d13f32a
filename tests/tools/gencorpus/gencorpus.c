/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-gencorpus: writes a deterministic, English-like text corpus for demos, tests
 * and benchmarks: words drawn from a fixed vocabulary with a Zipf-like distribution,
 * in lines and paragraphs, with punctuation and mixed case. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const vocabulary[] = {
        "the", "of", "and", "to", "a", "in", "that", "he", "was", "it", "his", "I", "with", "as", "had",
        "for", "you", "her", "not", "is", "at", "on", "but", "be", "she", "by", "him", "my", "have", "which",
        "this", "all", "from", "they", "were", "me", "so", "said", "no", "one", "would", "there", "or", "them",
        "an", "what", "their", "been", "if", "we", "when", "could", "out", "will", "then", "more", "up",
        "into", "do", "very", "little", "some", "time", "upon", "now", "your", "who", "man", "any", "know",
        "like", "before", "did", "about", "than", "old", "should", "over", "see", "only", "made", "great",
        "come", "other", "down", "never", "such", "again", "must", "after", "how", "came", "may", "good",
        "went", "think", "much", "well", "back", "us", "through", "long", "here", "way", "those", "own",
        "Tom", "Huck", "Sherlock", "Holmes", "Watson", "Dorian", "Gray", "Gregor", "Samsa", "Victor",
        "Frankenstein", "Ernest", "Gwendolen", "Hansel", "Gretel", "river", "house", "night", "door",
        "face", "eyes", "hand", "head", "heart", "life", "world", "father", "mother", "friend", "death",
        "morning", "voice", "window", "letter", "creature", "picture", "forest", "island", "cave", "raft",
        "village", "king", "queen", "witch", "wolf", "bread", "gold", "silver", "fire", "water", "stone",
        "beautiful", "terrible", "strange", "dark", "young", "certain", "poor", "whole", "dear", "last",
};
#define N_WORDS (sizeof(vocabulary) / sizeof(vocabulary[0]))

static uint64_t rng_state;

static uint64_t rng_next(void) {
        /* splitmix64: deterministic for a seed, good enough for text. */
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static size_t zipf_index(void) {
        /* An approximately Zipfian rank: small ranks far more often. */
        double u = (double) (rng_next() >> 11) / (double) (1ULL << 53);
        size_t i = (size_t) ((double) N_WORDS * u * u * u);
        return i < N_WORDS ? i : N_WORDS - 1;
}

static int write_file(const char *path, uint64_t size) {
        FILE *f = fopen(path, "we");
        uint64_t written = 0;
        unsigned col = 0, sentence = 0;

        if (!f) {
                fprintf(stderr, "mrkv-gencorpus: cannot create %s: %s\n", path, strerror(errno));
                return -1;
        }
        while (written < size) {
                const char *w = vocabulary[zipf_index()];
                char buf[64];
                int n;

                if (sentence == 0 && w[0] >= 'a' && w[0] <= 'z')
                        n = snprintf(buf, sizeof(buf), "%c%s", w[0] - 'a' + 'A', w + 1);
                else
                        n = snprintf(buf, sizeof(buf), "%s", w);
                sentence++;
                if (sentence > 6 + rng_next() % 12) {
                        buf[n++] = (rng_next() % 5 == 0) ? ',' : '.';
                        buf[n] = '\0';
                        sentence = 0;
                }
                if (col + (unsigned) n > 70) {
                        fputc('\n', f);
                        written++;
                        col = 0;
                        if (rng_next() % 12 == 0) {
                                fputc('\n', f);
                                written++;
                        }
                } else if (col > 0) {
                        fputc(' ', f);
                        written++;
                        col++;
                }
                fputs(buf, f);
                written += (uint64_t) n;
                col += (unsigned) n;
        }
        fputc('\n', f);
        if (fclose(f) != 0) {
                fprintf(stderr, "mrkv-gencorpus: cannot write %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static void help(void) {
        printf("Usage: mrkv-gencorpus [--files N] [--size BYTES] [--seed N] [--prefix P] DIR\n"
               "\n"
               "Writes N deterministic text files DIR/<P><i>.txt of about BYTES bytes each\n"
               "(defaults: 8 files, 400000 bytes, seed 1, prefix pg-gen-).\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "files", required_argument, NULL, 'n' },  { "size", required_argument, NULL, 's' },
                { "seed", required_argument, NULL, 'S' },   { "prefix", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },         {},
        };
        unsigned long files = 8;
        unsigned long long size = 400000, seed = 1;
        const char *prefix = "pg-gen-";
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        files = strtoul(optarg, &end, 10);
                        if (*end || files == 0 || files > 100000)
                                goto usage;
                        break;
                case 's':
                        size = strtoull(optarg, &end, 10);
                        if (*end || size == 0)
                                goto usage;
                        break;
                case 'S':
                        seed = strtoull(optarg, &end, 10);
                        if (*end)
                                goto usage;
                        break;
                case 'p':
                        prefix = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        goto usage;
                }
        if (optind + 1 != argc)
                goto usage;

        if (mkdir(argv[optind], 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "mrkv-gencorpus: cannot create %s: %s\n", argv[optind], strerror(errno));
                return 1;
        }
        for (unsigned long i = 0; i < files; i++) {
                char path[4096];
                rng_state = seed * 1000003ULL + i;
                snprintf(path, sizeof(path), "%s/%s%lu.txt", argv[optind], prefix, i);
                if (write_file(path, size) < 0)
                        return 1;
        }
        return 0;

usage:
        fprintf(stderr, "mrkv-gencorpus: invalid arguments; see --help.\n");
        return 2;
}
