"""The live checks: cheap diagnosis during training (the `DiagnoseObserver`, step 0 first), part of
the loop. Their findings are recorded with the run; the doctor (`trainlib.diagnose`) reads them back."""
