// MinHash signatures of CSR-packed sets of 64-bit shingle hashes.
//
// Row r owns hashes[indptr[r] .. indptr[r+1]). Signature value p of row r is
//     min over its hashes h of  (splitmix64(h ^ seeds[p]) >> 32)
// and 0xFFFFFFFF for an empty row. Bit-identical to clusterer/reference.py::minhash_signatures.
//
// Launch: one block per row, one thread per permutation (blockDim.x >= num_perm is not required:
// threads stride over permutations). The row's hashes are staged through shared memory in tiles so
// every permutation reads them from on-chip memory.

#ifndef TILE
#define TILE 256
#endif

__device__ __forceinline__ unsigned long long splitmix64(unsigned long long x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

extern "C" __global__ void minhash_signatures(const long long* __restrict__ indptr,
                                              const unsigned long long* __restrict__ hashes,
                                              const unsigned long long* __restrict__ seeds,
                                              const int num_perm,
                                              const long long n_rows,
                                              unsigned int* __restrict__ out) {
    __shared__ unsigned long long tile[TILE];
    const long long r = blockIdx.x;
    if (r >= n_rows) return;
    const long long begin = indptr[r];
    const long long end = indptr[r + 1];
    // each thread keeps the running minimum of up to 4 permutations in registers
    unsigned int best[4];
    unsigned long long seed[4];
    #pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int p = threadIdx.x + q * blockDim.x;
        best[q] = 0xFFFFFFFFu;
        seed[q] = p < num_perm ? seeds[p] : 0ULL;
    }
    for (long long base = begin; base < end; base += TILE) {
        const int count = (int)min((long long)TILE, end - base);
        for (int t = threadIdx.x; t < count; t += blockDim.x) tile[t] = hashes[base + t];
        __syncthreads();
        for (int t = 0; t < count; ++t) {
            const unsigned long long h = tile[t];
            #pragma unroll
            for (int q = 0; q < 4; ++q) {
                const unsigned int v = (unsigned int)(splitmix64(h ^ seed[q]) >> 32);
                best[q] = v < best[q] ? v : best[q];
            }
        }
        __syncthreads();
    }
    #pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int p = threadIdx.x + q * blockDim.x;
        if (p < num_perm) out[r * num_perm + p] = best[q];
    }
}
