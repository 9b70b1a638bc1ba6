/* fio's random_distribution: which block of a file a random I/O picks
 * when the choice is skewed (zipf, pareto, normal, zoned) rather than
 * uniform. The generators are the ones fio documents and uses (Gray et
 * al.'s zipf and self-similar "pareto" generators, fio's normal as the
 * mean of 12 uniform draws plus a uniform spread), so the same parameters
 * give the same hot-set fractions; the hot ranks are spread over the file
 * by a bijection, the hottest block at the distribution's center. */
#ifndef UWDF_BENCH_RANDDIST_H
#define UWDF_BENCH_RANDDIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rdist_kind { RDIST_RANDOM, RDIST_ZIPF, RDIST_PARETO, RDIST_NORMAL, RDIST_ZONED, RDIST_ZONED_ABS };

#define RDIST_MAX_ZONES 256

/* The option as parsed. */
struct rdist_spec {
    enum rdist_kind kind;
    double param;  /* zipf theta, pareto h, normal deviation (%) */
    double center; /* 0..1 where the hottest block is; < 0: fio's default */
    unsigned nzones;
    struct {
        double access, range; /* percentages; zoned_abs: range in bytes */
    } zones[RDIST_MAX_ZONES];
};

/* Parses "zipf:1.2", "pareto:0.9:0.25", "normal:10", "zoned:60/10:40/90",
 * "zoned_abs:60/1g:40/4g", "random"; NULL with the reason in err on failure. */
bool rdist_parse(struct rdist_spec *spec, const char *val, char *err, size_t n);

/* One file's generator state, read-only once made (shared by the slots). */
struct rdist {
    enum rdist_kind kind;
    uint64_t n;        /* blocks */
    uint64_t off;      /* where the hottest block lands */
    unsigned bits;     /* the spreading bijection on [0, 2^bits) */
    uint64_t mask, key;
    uint64_t zero;     /* where the bijection sends 0 */
    double zetan, zeta2, alpha, eta; /* zipf */
    double pareto_pow;
    uint64_t spread;   /* normal: width of the uniform spread, in blocks */
    unsigned nzones;
    uint64_t zone_start[RDIST_MAX_ZONES + 1]; /* zoned: block where zone z starts */
    double zone_cum[RDIST_MAX_ZONES];          /* cumulative access fraction */
};

/* Makes the generator for a file of n blocks of gran bytes; seed picks
 * the spreading and, with no center given for zipf or pareto, the hottest
 * block. False when zoned_abs's zones end beyond the n blocks. */
bool rdist_init(struct rdist *d, const struct rdist_spec *spec, uint64_t n, uint32_t gran, uint64_t seed);
/* The next block, from the caller's generator state rng. */
uint64_t rdist_next(const struct rdist *d, uint64_t *rng);

#endif
