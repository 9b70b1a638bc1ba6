/* fio's random_distribution generators (randdist.h). */
#include "config.h"

#include <math.h>

#include "randdist.h"
#include "util.h"

/* fio sums zipf's normalizing constant over at most this many ranks: the
 * same cap gives the same distribution on large devices. */
#define ZIPF_MAX_GEN 10000000ull

/* Uniform in [0, 1). */
static double unit(uint64_t *rng)
{
    return (double)(xorshift64(rng) >> 11) * 0x1p-53;
}

/* The spreading bijection on [0, n) (cycle walking on [0, 2^bits)). */
static uint64_t spread_raw(const struct rdist *d, uint64_t x)
{
    do
        x = bits_permute(x, d->bits, d->mask, d->key);
    while (x >= d->n);
    return x;
}

bool rdist_init(struct rdist *d, const struct rdist_spec *spec, uint64_t n, uint32_t gran, uint64_t seed)
{
    *d = (struct rdist){ .kind = spec->kind, .n = n ? n : 1 };
    n = d->n;
    d->bits = bits_for(n);
    d->mask = d->bits >= 64 ? UINT64_MAX : (1ull << d->bits) - 1;
    d->key = splitmix64(&seed);
    uint64_t rnd = splitmix64(&seed);
    /* Where the hottest block goes: the center, else (zipf, pareto) a
     * random place, as fio; normal's default center is the middle. */
    double c = spec->center >= 0 ? spec->center : spec->kind == RDIST_NORMAL ? 0.5 : -1;
    d->zero = spread_raw(d, 0);
    d->off = c >= 0 ? (uint64_t)(c * (double)n) % n : rnd % n;
    switch (spec->kind) {
    case RDIST_ZIPF: {
        double theta = spec->param;
        uint64_t gen = n < ZIPF_MAX_GEN ? n : ZIPF_MAX_GEN;
        for (uint64_t i = 1; i <= gen; i++)
            d->zetan += pow(1.0 / (double)i, theta);
        d->zeta2 = 1.0 + pow(0.5, theta);
        d->alpha = 1.0 / (1.0 - theta);
        d->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - d->zeta2 / d->zetan);
        break;
    }
    case RDIST_PARETO:
        d->pareto_pow = log(spec->param) / log(1.0 - spec->param);
        break;
    case RDIST_NORMAL:
        if (spec->param > 0) {
            d->spread = (uint64_t)ceil((double)n * spec->param / 100.0);
            if (d->spread > n / 2)
                d->spread = n / 2;
        }
        break;
    case RDIST_ZONED: {
        double acc = 0, range = 0;
        d->nzones = spec->nzones;
        for (unsigned z = 0; z < spec->nzones; z++) {
            d->zone_start[z] = (uint64_t)((double)n * range / 100.0);
            range += spec->zones[z].range;
            acc += spec->zones[z].access;
            d->zone_cum[z] = acc / 100.0;
        }
        d->zone_start[spec->nzones] = n;
        break;
    }
    case RDIST_ZONED_ABS: {
        /* fio: zones of absolute sizes from the region's start, in whole
         * blocks; past the last zone nothing is accessed */
        double acc = 0;
        uint64_t at = 0;
        d->nzones = spec->nzones;
        for (unsigned z = 0; z < spec->nzones; z++) {
            d->zone_start[z] = at / gran;
            at += (uint64_t)spec->zones[z].range;
            acc += spec->zones[z].access;
            d->zone_cum[z] = acc / 100.0;
        }
        d->zone_start[spec->nzones] = at / gran;
        if (d->zone_start[spec->nzones] > n)
            return false;
        break;
    }
    case RDIST_RANDOM:
        break;
    }
    return true;
}

/* The rank of the next block: 0 the hottest (normal: distance from the
 * middle, either side). */
static uint64_t zipf_rank(const struct rdist *d, uint64_t *rng)
{
    double u = unit(rng), uz = u * d->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < d->zeta2)
        return 1;
    double r = (double)d->n * pow(d->eta * u - d->eta + 1.0, d->alpha);
    return r >= (double)(d->n - 1) ? d->n - 1 : (uint64_t)r;
}

static uint64_t normal_value(const struct rdist *d, uint64_t *rng)
{
    /* the mean of 12 uniform draws on [0, n], rounded up (fio's), then a
     * uniform spread of `spread` blocks around it, halved until inside */
    uint64_t sum = 0;
    for (int i = 0; i < 12; i++)
        sum += xorshift64(rng) % (d->n + 1);
    int64_t v = (int64_t)((sum + 11) / 12);
    if (d->spread) {
        int64_t dev = (int64_t)(unit(rng) * (double)d->spread) - (int64_t)(d->spread / 2);
        while (dev && (v + dev < 0 || v + dev >= (int64_t)d->n))
            dev /= 2;
        v += dev;
    }
    return v >= (int64_t)d->n ? d->n - 1 : (uint64_t)v;
}

uint64_t rdist_next(const struct rdist *d, uint64_t *rng)
{
    uint64_t n = d->n, rank;
    switch (d->kind) {
    case RDIST_ZIPF:
        rank = zipf_rank(d, rng);
        break;
    case RDIST_PARETO: {
        /* (n - 1) u^p crowds towards n - 1: rank from there */
        double r = (double)(n - 1) * pow(unit(rng), d->pareto_pow);
        double back = (double)(n - 1) - r;
        rank = back <= 0 ? 0 : (uint64_t)back;
        break;
    }
    case RDIST_NORMAL:
        /* the middle (n / 2) is the hottest: rank by the offset from it */
        rank = (normal_value(d, rng) + n - n / 2) % n;
        break;
    case RDIST_ZONED:
    case RDIST_ZONED_ABS: {
        double u = unit(rng);
        unsigned z = 0;
        while (z + 1 < d->nzones && (u >= d->zone_cum[z] || d->zone_start[z + 1] == d->zone_start[z]))
            z++;
        uint64_t lo = d->zone_start[z], hi = d->zone_start[z + 1];
        return hi > lo ? lo + xorshift64(rng) % (hi - lo) : xorshift64(rng) % n;
    }
    default:
        return xorshift64(rng) % n;
    }
    /* Spread the ranks over the file, rank 0 at the center: a bijection
     * on [0, n) moved so that 0 stays 0. */
    uint64_t y = (spread_raw(d, rank) + n - d->zero) % n;
    return (y + d->off) % n;
}
