"""Emergency plans: definitions as configuration (levels IV..I, triggers, actions), activations
driven by the analysis layer's shortage alerts, each action a tracked task, and an activation
log for the duty officer. See docs/emergency.md."""
