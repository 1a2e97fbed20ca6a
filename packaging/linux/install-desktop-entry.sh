#!/bin/sh
# Adds TextGen Studio to this user's application menu: a .desktop entry that starts the TextGenStudio
# executable beside this script, and the app icon. Run it again after moving the folder;
# "--uninstall" removes both.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry="$data/applications/textgen-studio.desktop"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$entry"
  for size in 16 24 32 48 64 128 256 512; do
    rm -f "$data/icons/hicolor/${size}x${size}/apps/textgen-studio.png"
  done
  echo "removed $entry and the icons"
  exit 0
fi
icons="$here/_internal/resources/icons"
[ -x "$here/TextGenStudio" ] || { echo "error: $here/TextGenStudio not found" >&2; exit 1; }
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$data/icons/hicolor/${size}x${size}/apps"
  cp "$icons/textgen-studio-$size.png" "$data/icons/hicolor/${size}x${size}/apps/textgen-studio.png"
done
mkdir -p "$data/applications"
# Exec and TryExec with the absolute path of this folder (quoted for spaces)
sed -e "s|^Exec=TextGenStudio|Exec=\"$here/TextGenStudio\"|" \
    -e "s|^TryExec=TextGenStudio|TryExec=$here/TextGenStudio|" \
    "$here/_internal/resources/linux/textgen-studio.desktop" > "$entry"
chmod 644 "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "installed $entry"
