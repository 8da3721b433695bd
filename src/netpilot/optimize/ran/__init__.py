"""Radio access network decisions: slicing PRBs among slices, and edge AI inference placement."""
