#!/usr/bin/env bash
# check-doc-links.sh — the design lives in the repository, and code points into it.
#
# Fails when a tracked file
#   - cites the old design documents outside the repository ("DESIGN §…", DESIGN.md,
#     "crm-protocols §…", ../shared/…), which a clone does not contain; or
#   - cites docs/<page>.md#<anchor> (in a comment or anywhere else), or links <page>.md#<anchor> or
#     #<anchor> from a Markdown page, where the page or the heading does not exist.
# Anchors are GitHub's: the heading lower-cased, everything but letters, digits, spaces, "-" and "_"
# dropped, spaces turned into "-", and "-1", "-2", … added to repeats. Keep cited headings ASCII.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

self=scripts/check-doc-links.sh
fail=0

# Tracked text files, without generated sums and this script (it names the patterns).
mapfile -t files < <(git ls-files | grep -v -e '\.sum$' -e "^${self}\$")

# 1. Citations of documents that are not in the repository.
if out=$(printf '%s\0' "${files[@]}" | xargs -0 grep -I -n -E 'DESIGN §|DESIGN\.md|crm-protocols §|(\.\./|/work/)shared/|shared/(DESIGN|STYLE|reference)' -- 2>/dev/null); then
	echo "check-doc-links: these lines cite design documents outside the repository;"
	echo "point them at docs/architecture.md or docs/crm-protocols.md instead:"
	echo "$out"
	fail=1
fi

# anchors FILE prints the anchors of FILE's headings, one a line (fenced code is skipped).
anchors() {
	awk '
		/^[ \t]*(```|~~~)/ { fence = !fence; next }
		fence { next }
		/^#+[ \t]+/ {
			h = $0
			sub(/^#+[ \t]+/, "", h)
			sub(/[ \t]+#*[ \t]*$/, "", h)
			h = tolower(h)
			gsub(/[^a-z0-9 _-]/, "", h)
			gsub(/ /, "-", h)
			if (h in seen) { seen[h]++; h = h "-" seen[h] } else { seen[h] = 0 }
			print h
		}
	' "$1"
}

declare -A cache
has_anchor() { # file anchor
	local f=$1 a=$2
	if [[ -z ${cache[$f]+x} ]]; then
		cache[$f]=$'\n'"$(anchors "$f")"$'\n'
	fi
	[[ ${cache[$f]} == *$'\n'"$a"$'\n'* ]]
}

check() { # where target-file anchor
	local where=$1 target=$2 anchor=$3
	if [[ ! -f $target ]]; then
		echo "$where: $target does not exist"
		fail=1
	elif [[ -n $anchor ]] && ! has_anchor "$target" "$anchor"; then
		echo "$where: $target has no heading with anchor #$anchor"
		fail=1
	fi
}

# 2. docs/<page>.md#<anchor> anywhere in the tree (code comments, READMEs, docs).
while IFS= read -r hit; do
	where=${hit%%:docs/*}
	ref=${hit#"$where":}
	file=${ref%%#*}
	anchor=""
	[[ $ref == *#* ]] && anchor=${ref#*#}
	check "$where" "$file" "$anchor"
done < <(printf '%s\0' "${files[@]}" | xargs -0 grep -I -n -o -E 'docs/[A-Za-z0-9_.-]+\.md(#[A-Za-z0-9_-]+)?' -- 2>/dev/null || true)

# 3. Markdown links with an anchor inside the docs: (page.md#anchor) and (#anchor).
for md in docs/*.md; do
	dir=$(dirname "$md")
	while IFS= read -r hit; do
		line=${hit%%:*}
		link=${hit#*:}
		link=${link#](}
		link=${link%)}
		page=${link%%#*}
		anchor=${link#*#}
		if [[ -z $page ]]; then
			target=$md
		else
			target=$(realpath -m --relative-to=. "$dir/$page")
		fi
		check "$md:$line" "$target" "$anchor"
	done < <(grep -n -o -E '\]\(([A-Za-z0-9_./-]+\.md)?#[A-Za-z0-9_-]+\)' "$md" || true)
done

if [[ $fail -ne 0 ]]; then
	exit 1
fi
echo "check-doc-links: ok"
