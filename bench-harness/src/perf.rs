//! Profiling a gateway under load with `perf record` (DWARF call graphs, so no frame pointers
//! are needed), and turning the recording into a flamegraph.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::flame;
use crate::proc;

/// Samples per second per thread: enough for a 20 s run to show hot spots of a few percent,
/// little enough that DWARF stacks stay tens of megabytes.
const FREQUENCY: u32 = 199;

/// A `perf record` attached to a process for a fixed time.
pub struct Recording {
    child: Child,
    data: PathBuf,
    dir: PathBuf,
    name: String,
}

impl Recording {
    /// Attaches to `pid` for `seconds` (the length of the load run), writing `dir/name.data`.
    pub fn start(pid: u32, dir: &Path, name: &str, seconds: u32) -> Result<Recording, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let data = dir.join(format!("{name}.data"));
        let mut cmd = Command::new("perf");
        cmd.args(["record", "-q", "-F", &FREQUENCY.to_string()])
            .args(["--call-graph", "dwarf,8192", "-p", &pid.to_string(), "-o"])
            .arg(&data)
            .args(["--", "sleep", &seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        proc::record(&cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run perf (is it installed?): {e}"))?;
        Ok(Recording {
            child,
            data,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        })
    }

    /// Waits for the recording to end, then writes `name.folded` and `name.svg` and removes
    /// the raw data; returns the SVG's path.
    pub fn finish(mut self, target: &str, case: &str) -> Result<PathBuf, String> {
        let stderr = proc::drain(self.child.stderr.take());
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for perf: {e}"))?;
        let err = stderr.join().unwrap_or_default();
        if !status.success() && !self.data.is_file() {
            return Err(format!("perf record failed ({status}): {}", err.trim()));
        }
        let svg = render(
            &self.data,
            &self.dir,
            &self.name,
            &format!("{target}, {case}"),
        )?;
        let _ = fs::remove_file(&self.data);
        Ok(svg)
    }
}

/// `perf script` of `data` folded and drawn into `dir/name.folded` and `dir/name.svg`.
pub fn render(data: &Path, dir: &Path, name: &str, title: &str) -> Result<PathBuf, String> {
    let mut cmd = Command::new("perf");
    cmd.args(["script", "-F", "comm,tid,ip,sym,dso", "-i"])
        .arg(data);
    let out = proc::run(&mut cmd, Duration::from_secs(900))?;
    if !out.status.success() {
        return Err(format!("perf script failed: {}", out.stderr.trim()));
    }
    let folded = flame::fold(&out.stdout);
    if folded.is_empty() {
        return Err("perf recorded no samples".into());
    }
    let put = |path: PathBuf, text: String| {
        fs::write(&path, text)
            .map(|()| path.clone())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    put(
        dir.join(format!("{name}.folded")),
        flame::folded_text(&folded),
    )?;
    put(dir.join(format!("{name}.svg")), flame::svg(&folded, title))
}

/// `bench-harness flamegraph PERF_DATA OUT_DIR NAME [TITLE]`: renders an existing recording.
pub fn flamegraph_command(args: &[String]) -> Result<(), String> {
    let [data, dir, name, rest @ ..] = args else {
        return Err("usage: bench-harness flamegraph PERF_DATA OUT_DIR NAME [TITLE]".into());
    };
    let title = rest.first().cloned().unwrap_or_else(|| name.clone());
    let svg = render(Path::new(data), Path::new(dir), name, &title)?;
    println!("{}", svg.display());
    Ok(())
}
