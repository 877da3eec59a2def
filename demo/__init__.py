"""Demo Django project for chartbuild: a tiny shop whose charts are built as make targets."""
