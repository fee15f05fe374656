"""Diagnosis: cheap checks during training (observer), and the doctor's report afterwards."""
