"""The service: the HTTP API (app), the database (db, migrations), the workers and their settings.

A thin shell around the core library (schedules, plans, sampling, evaluation, metrics, tuning, models): the core
never imports anything from here, and nothing here imports the command line.
"""
