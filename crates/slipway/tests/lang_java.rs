//! End to end: a Java web app (Maven, the JDK's own `com.sun.net.httpserver`) built by the
//! built-in Java buildpack as Heroku's Java buildpack builds it, pushed with the real git
//! client and served through the router by the default `java -jar` web process, with
//! `JAVA_TOOL_OPTIONS` sizing the heap to the dyno; a rebuild resolves nothing again (the
//! cached `~/.m2`); and the failures a user can act on (a JDK the stack lacks, a compile
//! error, a Gradle build that needs the plugin portal) fail with what to do and release nothing.
//!
//! Maven Central is not reachable from this machine: Maven's plugins come from the default
//! runtime source, the stack's Debian-packaged Maven repository (`/usr/share/maven-repo`:
//! `maven`, `openjdk-17-jdk-headless` and the `libmaven-*-plugin-java`, `libsurefire-java`
//! packages, which `.ci/run` installs). A Gradle app builds with the stack's Gradle (Debian's
//! `gradle`), offline: Gradle's own plugins work, the plugin portal's cannot be fetched.

mod support;

use std::path::Path;

use support::{commit_all, repo, text, Server};

const POM: &str = include_str!("fixtures/java/maven/pom.xml");
const SYSTEM_PROPERTIES: &str = include_str!("fixtures/java/maven/system.properties");
const HELLO: &str = include_str!("fixtures/java/maven/src/main/java/com/example/Hello.java");
const HELLO_PATH: &str = "src/main/java/com/example/Hello.java";

/// What the stack needs for these builds; a machine without it cannot run these tests.
fn missing_tools() -> Vec<&'static str> {
    [
        "/usr/bin/mvn",
        "/usr/bin/gradle",
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/javac",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-compiler-plugin/3.10.1",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-jar-plugin/3.3.0",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-surefire-plugin",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-install-plugin",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-dependency-plugin",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-clean-plugin",
        "/usr/share/maven-repo/org/apache/maven/plugins/maven-resources-plugin",
    ]
    .into_iter()
    .filter(|path| !Path::new(path).exists())
    .collect()
}

macro_rules! require_tools {
    () => {
        require_runc!();
        let missing = missing_tools();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED: the stack lacks {missing:?}; install maven openjdk-17-jdk-headless \
                 libmaven-compiler-plugin-java libmaven-jar-plugin-java \
                 libmaven-resources-plugin-java libmaven-install-plugin-java libsurefire-java \
                 libmaven-clean-plugin-java libmaven-dependency-plugin-java gradle (as .ci/run \
                 does)"
            );
            return;
        }
    };
}

/// The sample app's files, `replace` replacing or adding some.
fn java_app(replace: &[(&'static str, &'static str)]) -> tempfile::TempDir {
    let mut files = vec![
        ("pom.xml", POM),
        ("system.properties", SYSTEM_PROPERTIES),
        (HELLO_PATH, HELLO),
    ];
    files.retain(|(path, _)| !replace.iter().any(|(p, _)| p == path));
    files.extend_from_slice(replace);
    repo(&files)
}

fn push_expecting(server: &Server, app: &str, dir: &Path, success: bool) -> String {
    let push = server.push(app, dir);
    let output = text(&push);
    assert_eq!(
        push.status.success(),
        success,
        "push of {app} should {}:\n{output}\n{}",
        if success { "succeed" } else { "fail" },
        server.log()
    );
    output
}

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in the build output:\n{output}"
    );
}

fn assert_no_deploy(server: &Server, app: &str) {
    let releases = server.cli_ok(&["releases", "-a", app]);
    assert!(
        !releases.contains("Deploy"),
        "{app}: a failed build writes no deploy release:\n{releases}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maven_app_builds_from_the_stacks_repository_serves_and_rebuilds_from_the_cache() {
    require_tools!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "javaweb"]);
    let app = java_app(&[]);

    let output = push_expecting(&server, "javaweb", app.path(), true);
    for expected in [
        "remote: -----> Java app detected",
        "remote: -----> Installing OpenJDK 17",
        "remote:        Using OpenJDK 17.",
        "remote: -----> Executing Maven",
        "remote:        Plugins and dependencies from the runtime source file:///usr/share/maven-repo",
        "remote:        $ mvn -DskipTests clean org.apache.maven.plugins:maven-dependency-plugin:list install",
        "[INFO] BUILD SUCCESS",
        "artifacts from the runtime source into ~/.m2",
        "remote:        Executable jar: target/hello-web-1.0.jar",
        "remote:        Default types for buildpack -> web",
    ] {
        assert_contains(&output, expected);
    }
    assert_eq!(
        output.matches("-----> Java app detected").count(),
        1,
        "the platform says it once:\n{output}"
    );
    assert!(
        !output.contains("Restoring ~/.m2"),
        "a first build has no cache:\n{output}"
    );
    // No Procfile: the web process is the default `java -jar` of the executable jar.
    let body = server.wait_for_200("javaweb", "/").await;
    assert!(body.starts_with("java says hi from web.1 on 17."), "{body}");
    // JAVA_TOOL_OPTIONS sized the heap to a standard-1X dyno (512 MB): -Xmx300m.
    let heap: u64 = body
        .trim_end()
        .rsplit("max heap ")
        .next()
        .and_then(|rest| rest.strip_suffix(" MB"))
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("no heap size in {body:?}"));
    assert!((200..=300).contains(&heap), "max heap {heap} MB: {body}");
    let ps = server.cli_ok(&["ps", "-a", "javaweb"]);
    assert!(
        ps.contains("java -Dserver.port=$PORT $JAVA_OPTS -jar target/hello-web-1.0.jar"),
        "{ps}"
    );

    // A rebuild with no dependency change resolves nothing: ~/.m2 comes from the build cache.
    commit_all(app.path(), "again");
    let output = push_expecting(&server, "javaweb", app.path(), true);
    for expected in [
        "remote: -----> Restoring ~/.m2 from the build cache (",
        "remote:        Nothing fetched: every plugin and dependency came from the cached ~/.m2",
        "[INFO] BUILD SUCCESS",
    ] {
        assert_contains(&output, expected);
    }
    let releases = server.cli_ok(&["releases", "-a", "javaweb"]);
    assert_eq!(releases.matches(" Deploy ").count(), 2, "{releases}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gradle_app_builds_offline_with_the_stacks_gradle_and_serves() {
    require_tools!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "gradleweb"]);
    // The same web app as the Maven sample, built by Gradle's own `java` plugin.
    let app = repo(&[
        (
            "build.gradle",
            "apply plugin: 'java'\njar { manifest { attributes 'Main-Class': 'com.example.Hello' } }\n",
        ),
        ("settings.gradle", "rootProject.name = 'hello-gradle'\n"),
        ("system.properties", SYSTEM_PROPERTIES),
        (HELLO_PATH, HELLO),
    ]);
    let output = push_expecting(&server, "gradleweb", app.path(), true);
    for expected in [
        "remote: -----> Java (Gradle) app detected",
        "remote: -----> Installing OpenJDK 17",
        "remote: -----> Building Gradle app...",
        "remote: -----> executing gradle build -x check",
        "BUILD SUCCESSFUL",
        "remote:        Executable jar: build/libs/hello-gradle.jar",
        "remote:        Default types for buildpack -> web",
    ] {
        assert_contains(&output, expected);
    }
    // No Procfile: the web process is the default `java -jar` of Gradle's jar.
    let body = server.wait_for_200("gradleweb", "/").await;
    assert!(body.starts_with("java says hi from web.1 on 17."), "{body}");
    let ps = server.cli_ok(&["ps", "-a", "gradleweb"]);
    assert!(
        ps.contains("java -Dserver.port=$PORT $JAVA_OPTS -jar build/libs/hello-gradle.jar"),
        "{ps}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_apps_the_platform_cannot_build_are_refused_with_what_to_do() {
    require_tools!();
    let server = Server::start();
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static [&'static str],
    );
    let cases: [Case; 4] = [
        (
            "java-eleven",
            vec![("system.properties", "java.runtime.version=11\n")],
            &[
                "OpenJDK 11 is not available on the host stack.",
                "Available OpenJDK versions: 17 (17.",
                "Set java.runtime.version in system.properties to one of them and push again.",
            ],
        ),
        (
            "java-garbage",
            vec![("system.properties", "java.runtime.version=seventeen\n")],
            &["system.properties: java.runtime.version=seventeen is not a Java version."],
        ),
        (
            "java-gradle",
            vec![(
                "build.gradle",
                "plugins { id 'org.springframework.boot' version '3.2.0' }\n",
            )],
            &[
                "remote: -----> Building Gradle app...",
                "Failed to build app with Gradle.",
                "Gradle runs offline here: plugins from the Gradle plugin portal and dependencies from",
            ],
        ),
        (
            "java-broken",
            vec![(HELLO_PATH, "package com.example;\npublic final class Hello {\n")],
            &[
                "[ERROR] COMPILATION ERROR",
                "Failed to build app with Maven.",
                "Maven reaches only the runtime source file:///usr/share/maven-repo, not Maven Central.",
                "Maven plugins there: clean-plugin ",
            ],
        ),
    ];
    for (app, files, expected) in cases {
        server.cli_ok(&["apps:create", app]);
        let dir = if app == "java-gradle" {
            repo(&files)
        } else {
            java_app(&files)
        };
        let output = push_expecting(&server, app, dir.path(), false);
        for line in expected {
            assert_contains(&output, line);
        }
        assert_no_deploy(&server, app);
    }
}
