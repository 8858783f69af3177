"""Provider presets: how each common vendor wants to be called, and how it calls back."""
