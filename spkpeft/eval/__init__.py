"""Metrics (EER, minDCF, accuracy, macro-F1), results files and tables, plots."""
