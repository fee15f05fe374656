"""Diagnosis: cheap checks during training (observer, step 0 first), and afterwards the doctor:
the report, the probes (short experiments on the run's config) and the verdict."""
