"""Evaluation of trained runs: metrics, error analysis, baselines, ensembles, reports.

``flaredetect-eval`` (:mod:`flaredetect.evaluate`) orchestrates; the pieces here are plain
functions on numpy arrays so they can be tested on hand-made cases.
"""
