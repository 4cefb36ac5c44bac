"""What a run leaves behind: recording, metrics, files, figures and progress."""
