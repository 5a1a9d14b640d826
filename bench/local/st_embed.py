"""sentence-transformers' side of the embedding benchmark: sentences/s for batches of 256
short sentences with all-MiniLM-L6-v2 on PyTorch's CPU backend, with the thread count asked.

    st_embed.py MODEL_DIR THREADS ROUNDS

Prints one JSON line per round: {"round": i, "sentences": n, "seconds": s}.
"""

import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

from sentences import sentences


def main() -> None:
    model_dir, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    model = SentenceTransformer(model_dir, device="cpu")
    batch = sentences(256)
    model.encode(batch[:32], batch_size=256)  # warm-up
    for i in range(rounds):
        started = time.perf_counter()
        vectors = model.encode(batch, batch_size=256, normalize_embeddings=True)
        seconds = time.perf_counter() - started
        assert vectors.shape == (256, 384), vectors.shape
        print(json.dumps({"round": i, "sentences": len(batch), "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
