"""Our own market on the real Raydium CP-Swap and Meteora DLMM programs (any cluster)."""
