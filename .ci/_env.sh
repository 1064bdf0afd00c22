# Sourced by .ci/setup and .ci/env: which Python environment modelzoo lives in.
# An active virtualenv or conda env wins (the user chose it); otherwise the project's own .venv.
zoo_env_dir() {
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    printf '%s\n' "$VIRTUAL_ENV"
  elif [ -n "${CONDA_PREFIX:-}" ]; then
    printf '%s\n' "$CONDA_PREFIX"
  else
    printf '%s\n' "$1/.venv"
  fi
}
