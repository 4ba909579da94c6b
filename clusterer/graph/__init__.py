"""The prompt graph: kNN, MinHash-LSH candidates, scored edges."""
