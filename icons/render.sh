#!/usr/bin/env bash
# Draws the tray and app icons from the SVG below and renders them to RGBA PNGs with
# rsvg-convert (Debian: librsvg2-bin). The PNGs are committed; run this again after a change.
#
# Tray icons are two-tone (a light badge with a dark outline) so one set reads on light and
# dark panels alike; the state is the badge on the corner: none (signed out, badge dimmed),
# green check (signed in), amber "!" (attention: sign-in needed or refresh failing).
set -euo pipefail
cd "$(dirname "$0")"

# The badge: a lanyard pass with its punched slot, 64x64 user units.
badge() { # fill stroke opacity
  cat <<SVG
  <g opacity="$3">
    <path fill-rule="evenodd" fill="$1" stroke="$2" stroke-width="4" stroke-linejoin="round"
      d="M18 6h28a6 6 0 0 1 6 6v40a6 6 0 0 1-6 6H18a6 6 0 0 1-6-6V12a6 6 0 0 1 6-6z
         M25 13h14a2.5 2.5 0 0 1 0 5H25a2.5 2.5 0 0 1 0-5z"/>
    <circle cx="32" cy="31" r="6.5" fill="$2"/>
    <path d="M21 48c1.5-6 6-9 11-9s9.5 3 11 9z" fill="$2"/>
  </g>
SVG
}

corner() { # state
  case "$1" in
    signed-in) cat <<SVG
  <circle cx="47" cy="47" r="15" fill="#1a7f37" stroke="#ffffff" stroke-width="3"/>
  <path d="M40 47.5l5 5 9-10" fill="none" stroke="#ffffff" stroke-width="4.5"
    stroke-linecap="round" stroke-linejoin="round"/>
SVG
    ;;
    attention) cat <<SVG
  <circle cx="47" cy="47" r="15" fill="#d97706" stroke="#ffffff" stroke-width="3"/>
  <path d="M47 38v11" stroke="#ffffff" stroke-width="5" stroke-linecap="round"/>
  <circle cx="47" cy="56" r="2.8" fill="#ffffff"/>
SVG
    ;;
    signed-out) ;;
  esac
}

tray_svg() { # state
  local opacity=1
  [ "$1" = signed-out ] && opacity=0.78
  printf '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">\n'
  badge "#f6f8fa" "#24292f" "$opacity"
  corner "$1"
  printf '</svg>\n'
}

app_svg() {
  cat <<SVG
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="#3b82f6"/><stop offset="1" stop-color="#1d4ed8"/>
  </linearGradient></defs>
  <rect x="2" y="2" width="60" height="60" rx="14" fill="url(#bg)"/>
  <g transform="translate(8 6) scale(0.75)">
$(badge "#ffffff" "#1e3a8a" 1)
  </g>
</svg>
SVG
}

mkdir -p svg
for state in signed-out signed-in attention; do
  tray_svg "$state" > "svg/tray-$state.svg"
  rsvg-convert -w 32 -h 32 "svg/tray-$state.svg" -o "tray-$state.png"
  rsvg-convert -w 64 -h 64 "svg/tray-$state.svg" -o "tray-$state@2x.png"
done
app_svg > svg/app.svg
# The names Tauri's bundler expects.
rsvg-convert -w 32 -h 32 svg/app.svg -o 32x32.png
rsvg-convert -w 128 -h 128 svg/app.svg -o 128x128.png
rsvg-convert -w 256 -h 256 svg/app.svg -o 128x128@2x.png
rsvg-convert -w 512 -h 512 svg/app.svg -o icon.png
