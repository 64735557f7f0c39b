"""Assignment 11_maf (MADE and the masked autoregressive flow): spec, reference, hidden checks, samples. SECRET."""
