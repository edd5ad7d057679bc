#!/usr/bin/env bash
# Benchmark (not a test): build times per language, cold (a new app, empty build cache) and
# cached (the same app pushed again with one source file changed, no dependency), no-op (an
# empty commit pushed once more: the cached rebuild that changes nothing), each beside
# its peer in the same run: the language's own install command run directly on the host
# (pip into a fresh venv, npm ci, go build, bundle install --local, mvn -o package, cargo build
# --release), reported as a ratio.
# With --stack it also times `slipway stacks:build` of a small manifest (minbase + python3)
# and compares dyno start (ps:restart until the web dyno answers) on that stack and on host.
#
#   bench/builds.sh [--stack] [REPEAT]   (as root; REPEAT cached pushes per app, default 3;
#                                          BENCH_APPS="go-app php-app" picks samples;
#                                          builds the release binary unless SLIPWAY_BIN is set)
#
# The samples are the end-to-end tests' own: crates/slipway/tests/fixtures/{python,nodejs,ruby,java,rust}/
# and small Go, Ruby (a vendored gem: no gem server here), PHP and static apps written below;
# the Rails sample's gems are the stack's (Debian's ruby-railties & co.: no gem server here).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=no
if [ "${1:-}" = "--stack" ]; then stack=yes; shift; fi
repeat=${1:-3}
fixtures=$(pwd)/crates/slipway/tests/fixtures
. bench/lib.sh
api_port=5660; router_port=8660
start_server $api_port $router_port
ms() { echo $(( $(date +%s%N) / 1000000 )); }
commit() { git -C "$1" add -A && git -C "$1" -c user.email=b@b -c user.name=b commit -q --allow-empty -m "${2:-r}"; }

# Sample apps, each a git repository under $work/apps/NAME.
mkdir -p "$work/apps"
sample() { # NAME SOURCE_DIR|-
  local dir=$work/apps/$1
  mkdir -p "$dir"
  [ "$2" = - ] || cp -a "$2/." "$dir/"
  git -C "$dir" init -q -b main
}
sample python-django "$fixtures/python/django"; commit "$work/apps/python-django"
sample python-uv "$fixtures/python/uv"; commit "$work/apps/python-uv"
sample nodejs-npm "$fixtures/nodejs/npm-build"; commit "$work/apps/nodejs-npm"
sample go-app -
printf 'module example.com/bench\n\ngo 1.19\n' > "$work/apps/go-app/go.mod"
printf 'package main\n\nimport (\n\t"net/http"\n\t"os"\n)\n\nfunc main() {\n\thttp.ListenAndServe(":"+os.Getenv("PORT"), http.FileServer(http.Dir(".")))\n}\n' > "$work/apps/go-app/main.go"
commit "$work/apps/go-app"
sample php-app -
echo '{"require": {"php": ">=8.0"}}' > "$work/apps/php-app/composer.json"
echo '<?php echo "hi";' > "$work/apps/php-app/index.php"
commit "$work/apps/php-app"
sample static-site -
mkdir -p "$work/apps/static-site/public" && echo '<h1>hi</h1>' > "$work/apps/static-site/public/index.html"
echo '{"root": "public/"}' > "$work/apps/static-site/static.json"
commit "$work/apps/static-site"
sample ruby-app -
# No gem server is reachable here: the app vendors a gem of its own in vendor/cache, as the
# end-to-end test (tests/lang_others.rs) does.
mkdir -p "$work/gem/lib" "$work/apps/ruby-app/vendor/cache"
printf 'Gem::Specification.new do |s|\n  s.name = "greeting"\n  s.version = "1.0.0"\n  s.summary = "a vendored gem"\n  s.authors = ["slipway"]\n  s.license = "MIT"\n  s.files = ["lib/greeting.rb"]\nend\n' > "$work/gem/greeting.gemspec"
printf 'module Greeting\n  def self.hello = "hello"\nend\n' > "$work/gem/lib/greeting.rb"
(cd "$work/gem" && gem build -q greeting.gemspec >/dev/null 2>&1)
cp "$work/gem/greeting-1.0.0.gem" "$work/apps/ruby-app/vendor/cache/"
printf 'source "https://rubygems.org"\ngem "greeting", "1.0.0"\n' > "$work/apps/ruby-app/Gemfile"
printf 'GEM\n  remote: https://rubygems.org/\n  specs:\n    greeting (1.0.0)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  greeting (= 1.0.0)\n' > "$work/apps/ruby-app/Gemfile.lock"
printf 'require "socket"\nrequire "greeting"\nserver = TCPServer.new("0.0.0.0", Integer(ENV.fetch("PORT")))\nloop do\n  c = server.accept\n  while (l = c.gets) && l != "\\r\\n"; end\n  c.write "HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\n#{Greeting.hello}"\n  c.close\nend\n' > "$work/apps/ruby-app/web.rb"
echo 'web: bundle exec ruby web.rb' > "$work/apps/ruby-app/Procfile"
commit "$work/apps/ruby-app"
sample ruby-rails "$fixtures/ruby/rails"; commit "$work/apps/ruby-rails"
sample java-maven "$fixtures/java/maven"; commit "$work/apps/java-maven"
sample rust-cargo "$fixtures/rust/hello"; commit "$work/apps/rust-cargo"

push() { # APP DIR -> milliseconds of the push (build + release)
  local t0 t1
  t0=$(ms)
  git -C "$2" push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/$1.git" main >"$work/push-$1.log" 2>&1 \
    || { echo "push of $1 failed:" >&2; cat "$work/push-$1.log" >&2; exit 1; }
  t1=$(ms)
  echo $((t1 - t0))
}

# The peer: the language's own install, run on the host in a scratch copy of the app.
peer() { # NAME -> milliseconds
  local copy=$work/peer-$1 t0 t1
  rm -rf "$copy"; cp -a "$work/apps/$1" "$copy"; cd "$copy"
  # Maven's peer runs offline (-o) against a local repository warmed, untimed, from the stack's
  # Debian-packaged plugins as the buildpack's cached ~/.m2 is; cargo's starts with a cold
  # target/ and the crates already downloaded (the host's ~/.cargo).
  case $1 in
    java-maven) mkdir -p "$work/m2/org/codehaus/plexus/plexus-utils/1.1"
      cp /usr/share/maven-repo/org/codehaus/plexus/plexus-utils/debian/plexus-utils-debian.jar \
        "$work/m2/org/codehaus/plexus/plexus-utils/1.1/plexus-utils-1.1.jar"
      echo '<project><modelVersion>4.0.0</modelVersion><groupId>org.codehaus.plexus</groupId><artifactId>plexus-utils</artifactId><version>1.1</version></project>' \
        >"$work/m2/org/codehaus/plexus/plexus-utils/1.1/plexus-utils-1.1.pom"
      printf '<settings><localRepository>%s</localRepository><profiles><profile><id>s</id><repositories><repository><id>central</id><url>file:///usr/share/maven-repo</url><releases><checksumPolicy>ignore</checksumPolicy></releases></repository></repositories><pluginRepositories><pluginRepository><id>central</id><url>file:///usr/share/maven-repo</url><releases><checksumPolicy>ignore</checksumPolicy></releases></pluginRepository></pluginRepositories></profile></profiles><activeProfiles><activeProfile>s</activeProfile></activeProfiles></settings>' \
        "$work/m2" >"$work/m2-settings.xml"
      mvn -B -q -s "$work/m2-settings.xml" -DskipTests clean package >/dev/null 2>&1 ;;
    rust-cargo) /usr/bin/cargo fetch -q --locked >/dev/null 2>&1 ;;
  esac
  t0=$(ms)
  case $1 in
    python-django) python3 -m venv .venv && PIP_CONFIG_FILE=/dev/null .venv/bin/pip install -q -r requirements.txt ;;
    python-uv) python3 -m venv .venv && PIP_CONFIG_FILE=/dev/null .venv/bin/pip install -q uv && .venv/bin/uv sync -q --locked --no-default-groups ;;
    nodejs-npm) npm ci --silent --no-audit --no-fund >/dev/null ;;
    go-app) GOPROXY=off GOCACHE=$copy/.gocache go build -o bin/bench . ;;
    ruby-app) BUNDLE_PATH=vendor/bundle bundle install --local --quiet ;;
    ruby-rails) export GEM_HOME=$copy/vendor/bundle/ruby/$(ruby -e 'print RbConfig::CONFIG["ruby_version"]') \
        BUNDLE_FROZEN=1 BUNDLE_WITHOUT=development:test RAILS_ENV=production SECRET_KEY_BASE=bench
      bundle install -j4 --local --quiet && bundle exec rake assets:precompile ;;
    php-app) composer install -q --no-dev --optimize-autoloader --no-interaction ;;
    static-site) nginx -t -q -c /etc/nginx/nginx.conf ;;
    java-maven) mvn -B -q -o -s "$work/m2-settings.xml" -DskipTests clean package ;;
    rust-cargo) /usr/bin/cargo build -q --release --locked ;;
  esac >/dev/null 2>&1
  t1=$(ms)
  cd - >/dev/null
  echo $((t1 - t0))
}

printf '%-14s %10s %10s %10s %10s %12s %12s\n' app cold_ms cached_ms noop_ms peer_ms cold/peer cached/peer
for app in ${BENCH_APPS:-python-django python-uv nodejs-npm go-app ruby-app ruby-rails php-app static-site java-maven rust-cargo}; do
  "$bin" apps:create "$app" >/dev/null
  cold=$(push "$app" "$work/apps/$app")
  cached=()
  for i in $(seq "$repeat"); do
    echo "rebuild $i" >"$work/apps/$app/REBUILD.txt"
    commit "$work/apps/$app" "again $i"
    cached+=("$(push "$app" "$work/apps/$app")")
  done
  best_cached=$(printf '%s\n' "${cached[@]}" | sort -n | head -1)
  commit "$work/apps/$app" "no-op"
  noop=$(push "$app" "$work/apps/$app")
  p=$(peer "$app")
  awk -v a="$app" -v c="$cold" -v k="$best_cached" -v n="$noop" -v p="$p" \
    'BEGIN { printf "%-14s %10d %10d %10d %10d %12.2f %12.2f\n", a, c, k, n, p, c / p, k / p }'
done

# Where each build's time went (the build crate logs its phases: prepare, detect, compile per
# buildpack, release, pack with how much of the slug was reused).
echo
echo "build phases (server log):"
grep -o 'build phases: .*' "$work/server.log" | sed 's/\x1b\[[0-9;]*m//g' || true

if [ "$stack" = yes ]; then
  manifests=$work/manifests/bench-stack
  mkdir -p "$manifests"
  printf 'suite bookworm\n\n[run]\npython3\n' > "$manifests/packages.txt"
  kill "$server"; wait "$server" 2>/dev/null || true
  "$bin" server --data-dir "$work/data" --api-addr "127.0.0.1:$api_port" \
    --router-addr "127.0.0.1:$router_port" --router-tls-addr "127.0.0.1:$((router_port + 1))" \
    --stack-manifests "$work/manifests" >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$api_port/" >/dev/null && break; sleep 0.1; done
  t0=$(ms); "$bin" stacks:build bench-stack >/dev/null; t1=$(ms)
  echo "stacks:build bench-stack (debootstrap minbase + python3): $(( (t1 - t0) / 1000 )) s"
  mkdir -p "$work/apps/web" && cd "$work/apps/web" && git init -q -b main
  echo 'web: python3 -m http.server $PORT' > Procfile && commit . web && cd - >/dev/null
  for s in host bench-stack; do
    "$bin" apps:create "web-$s" --stack "$s" >/dev/null
    push "web-$s" "$work/apps/web" >/dev/null
    for _ in $(seq 600); do curl -sf -H "Host: web-$s.localhost" "http://127.0.0.1:$router_port/" >/dev/null && break; sleep 0.05; done
    starts=()
    for i in $(seq 5); do
      t0=$(ms)
      "$bin" ps:restart -a "web-$s" >/dev/null
      sleep 0.2
      for _ in $(seq 600); do curl -sf -H "Host: web-$s.localhost" "http://127.0.0.1:$router_port/" >/dev/null && break; sleep 0.02; done
      starts+=($(( $(ms) - t0 )))
    done
    echo "dyno restart to 200 on $s: $(printf '%s\n' "${starts[@]}" | sort -n | sed -n 3p) ms (median of 5)"
  done
fi
