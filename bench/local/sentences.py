"""The benchmark's short sentences: the same 256 for every embedder (kai reads them from the
file this writes)."""

import itertools
import sys

SUBJECTS = ["The cat", "A developer", "My neighbour", "The old train", "Our team", "A small bird",
            "The committee", "Her brother"]
VERBS = ["quietly reads", "builds", "forgets", "carefully paints", "sells", "watches",
         "repairs", "describes"]
OBJECTS = ["a red bicycle near the station.", "the report before lunch.",
           "an umbrella in the rain.", "the garden behind the house.",
           "a song about the sea."]


def sentences(count: int) -> list[str]:
    combos = itertools.cycle(itertools.product(SUBJECTS, VERBS, OBJECTS))
    return [" ".join(next(combos)) for _ in range(count)]


if __name__ == "__main__":
    sys.stdout.write("\n".join(sentences(int(sys.argv[1]))) + "\n")
