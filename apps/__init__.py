"""Applications of the loop: benchmark evaluation and training-data builds from recorded runs."""
