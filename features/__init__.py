"""Raw account tables -> point-in-time snapshots -> model features (pure, vectorized)."""
