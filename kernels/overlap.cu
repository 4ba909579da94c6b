// Skeleton overlap of candidate pairs from MinHash signatures.
//
// For pair e = (i[e], j[e]) with signatures sig[i], sig[j] (num_perm uint32 each, row-major) and
// skeleton set sizes a = sizes[i], b = sizes[j]:
//     J = (number of equal signature values) / num_perm                  (estimated Jaccard)
//     C = min(1, J (a + b) / (1 + J) / min(a, b))                          (estimated containment)
// Pairs where either skeleton is empty get J = C = 0. out is float32 (m, 2) = [J, C].
// Same numbers as clusterer/reference.py::skeleton_overlap.
//
// Launch: one warp per pair (blockDim.x a multiple of 32); lanes read consecutive signature words, so
// each warp streams 2 * num_perm * 4 bytes with coalesced loads, then reduces with shuffles.

extern "C" __global__ void skeleton_overlap(const unsigned int* __restrict__ sig,
                                            const int* __restrict__ sizes,
                                            const long long* __restrict__ i,
                                            const long long* __restrict__ j,
                                            const int num_perm,
                                            const long long m,
                                            float* __restrict__ out) {
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= m) return;
    const long long a = i[warp];
    const long long b = j[warp];
    const int na = sizes[a];
    const int nb = sizes[b];
    const unsigned int* sa = sig + a * num_perm;
    const unsigned int* sb = sig + b * num_perm;
    int same = 0;
    for (int p = lane; p < num_perm; p += 32) same += (sa[p] == sb[p]);
    #pragma unroll
    for (int off = 16; off > 0; off >>= 1) same += __shfl_down_sync(0xFFFFFFFFu, same, off);
    if (lane == 0) {
        float jac = 0.0f, con = 0.0f;
        if (na > 0 && nb > 0) {
            jac = (float)same / (float)num_perm;
            const float inter = jac * (float)(na + nb) / (1.0f + jac);
            con = fminf(inter / (float)min(na, nb), 1.0f);
        }
        out[2 * warp] = jac;
        out[2 * warp + 1] = con;
    }
}
