"""The crew page: a phone-friendly, server-rendered page where a crew member signs in, sees
today's route with ETAs and moves each job through start and resolved (see README.md)."""
