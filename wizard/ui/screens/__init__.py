"""The wizard's screens: the step 1 form, a step screen for steps 2-6, the summary and modals."""
