using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Dicc.Cli.Infrastructure;
using Dicc.Engine.Training;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Dicc.Cli.Sweep;

/// <summary>A worker slot of the local executor: the device its cells train on and the CPU threads each may use.</summary>
internal sealed record WorkerSlot(string Device, int? Threads);

/// <summary>
/// Runs a sweep's cells on this machine (docs/cli.md, "dicc sweep"): a few workers, each cell in its own process
/// (<c>dicc sweep --cell N</c>, its output appended to logs/cell-N.log), started in a session of its own so that a
/// Ctrl-C at the terminal reaches only the sweep, which passes the stop on to every cell once: each saves its
/// checkpoint and the next run of the sweep resumes it. Progress of the whole sweep (done, running, failed, ETA)
/// is one screen on a terminal and one line per event elsewhere.
/// </summary>
internal sealed class LocalExecutor(SweepPlan plan, IAnsiConsole console, ErrorConsole errors)
{
    private sealed class Worker
    {
        public required SweepCell Cell;
        public required Process Process;
        public required WorkerSlot Slot;
        public required DateTime Started;
        public required int EpochsAtStart;
        public int Epochs, Done;
        public double? ValidationAccuracy;
    }

    private readonly List<string> _events = [];
    private readonly Queue<SweepCell> _queue = new();
    private readonly List<Worker> _running = [];
    private int _remainingEpochs;
    private int _finished, _failed, _interrupted, _elsewhere, _alreadyDone;
    private long _epochsThisSession;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Runs <paramref name="cells"/> on the slots; returns the exit code (0 when every cell finished).</summary>
    public int Run(IReadOnlyList<SweepCell> cells, IReadOnlyList<WorkerSlot> slots, CancellationToken stop, Func<int> stopExitCode)
    {
        var self = SelfCommand.Resolve();
        var queue = _queue;
        var running = _running;
        foreach (var c in cells) queue.Enqueue(c);
        var free = new Queue<WorkerSlot>(slots);
        var failures = new List<string>();
        int remainingEpochs = 0;
        bool forwarded = false;
        bool interactive = console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi;
        Note($"Sweep {plan.Root}: {cells.Count} cell(s) to run on {slots.Count} worker(s) ({Describe(slots)}); each cell's output goes to {plan.LogDirectory}/cell-N.log.");

        void Loop(Action? refresh)
        {
            while (true)
            {
                foreach (var w in running.Where(w => w.Process.HasExited).ToList())
                {
                    running.Remove(w);
                    free.Enqueue(w.Slot);
                    Reap(w, failures);
                }
                if (stop.IsCancellationRequested && !forwarded)
                {
                    forwarded = true;
                    int signal = stopExitCode() == StopSignals.TerminateExitCode ? SigTerm : SigInt;
                    Event($"stopping: {running.Count} running cell(s) save their checkpoints (re-run the sweep to resume them).");
                    foreach (var w in running) Signal(w.Process, signal);
                }
                while (!stop.IsCancellationRequested && free.Count > 0 && queue.Count > 0)
                {
                    var cell = queue.Dequeue();
                    var state = CellStates.Of(plan, cell);
                    if (state.Phase == CellPhase.Finished)
                    {
                        _alreadyDone++;
                        continue;
                    }
                    if (state.Phase == CellPhase.Running)
                    {
                        _elsewhere++;
                        Event($"cell {cell.Index} ({cell.Directory}) is being trained by another process ({state.Detail}); not started here.");
                        continue;
                    }
                    var worker = Launch(self, cell, free.Dequeue(), state);
                    running.Add(worker);
                    Event($"started cell {cell.Index} {cell.Directory} on {worker.Slot.Device}" +
                          (state.EpochsDone > 0 ? $" (resuming after epoch {state.EpochsDone} of {state.Epochs})" : "") + $", process {worker.Process.Id}");
                }
                foreach (var w in running) Refresh(w);
                _remainingEpochs = remainingEpochs = queue.Sum(c => Math.Max(0, EpochsOf(c) - DoneOf(c))) + running.Sum(w => Math.Max(0, w.Epochs - w.Done));
                refresh?.Invoke();
                if (running.Count == 0 && (queue.Count == 0 || stop.IsCancellationRequested)) break;
                stop.WaitHandle.WaitOne(forwarded ? 200 : 500);
            }
        }

        if (interactive)
        {
            console.Live(Screen(running, queue.Count, remainingEpochs)).AutoClear(false).Start(ctx =>
                Loop(() => ctx.UpdateTarget(Screen(running, queue.Count, remainingEpochs))));
        }
        else
        {
            Loop(null);
        }

        string took = CliValues.Duration(_clock.Elapsed);
        int finished = cells.Count(c => CellStates.Of(plan, c).Phase == CellPhase.Finished);
        Note($"Sweep {plan.Root}: {finished} of {cells.Count} cell(s) finished ({_finished} now, {_alreadyDone} before), " +
                                         $"{_failed} failed, {_interrupted} interrupted, {_elsewhere} trained elsewhere; {took}.");
        foreach (var f in failures) errors.Error(f);
        if (stop.IsCancellationRequested) return stopExitCode();
        if (_failed > 0)
        {
            errors.MarkupLine(Markup.Escape($"{_failed} cell(s) failed: see their logs; re-running the sweep retries them. dicc sweep --out {plan.Root} --status shows every cell."));
            return ExitCodes.InternalError;
        }
        if (finished == cells.Count)
            Note($"The table: dicc sweep --out {plan.Root} --report (or dicc compare {plan.Root}).");
        return ExitCodes.Success;
    }

    private static string Describe(IReadOnlyList<WorkerSlot> slots) =>
        string.Join(", ", slots.GroupBy(s => s.Device).Select(g => $"{g.Count()} on {g.Key}" + (g.First().Threads is int t ? $" with {t} thread(s) each" : "")));

    private int EpochsOf(SweepCell cell)
    {
        try { return new RunDirectory(plan.RunPath(cell)).ReadConfig().Options.Epochs; }
        catch (Engine.InputException) { return 0; }
    }

    private int DoneOf(SweepCell cell)
    {
        try { return new RunDirectory(plan.RunPath(cell)).ReadMetrics().Count; }
        catch (Engine.InputException) { return 0; }
        catch (IOException) { return 0; }
    }

    private Worker Launch(SelfCommand self, SweepCell cell, WorkerSlot slot, CellStatus state)
    {
        Directory.CreateDirectory(plan.LogDirectory);
        string[] command = [self.Program, .. self.Prefix, "sweep", "--out", plan.Root, "--cell", cell.Index.ToString(CultureInfo.InvariantCulture), "--device", slot.Device];
        ProcessStartInfo start;
        if (!OperatingSystem.IsWindows() && File.Exists("/bin/sh"))
        {
            // The cell gets a session of its own (a terminal's Ctrl-C reaches only the sweep, which passes it on once)
            // and writes straight to its log, so it keeps training should the sweep itself be killed.
            start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            bool setsid = File.Exists("/usr/bin/setsid") || File.Exists("/bin/setsid");
            foreach (var a in new[] { "-c", setsid ? "log=$1; shift; exec setsid \"$@\" </dev/null >>\"$log\" 2>&1" : "log=$1; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1", "sh", plan.LogFile(cell.Index) })
                start.ArgumentList.Add(a);
            foreach (var a in command) start.ArgumentList.Add(a);
        }
        else
        {
            start = new ProcessStartInfo(command[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in command.Skip(1)) start.ArgumentList.Add(a);
        }
        foreach (var (k, v) in self.Environment) start.Environment[k] = v;
        if (slot.Threads is int threads) start.Environment["DOTNET_PROCESSOR_COUNT"] = threads.ToString(CultureInfo.InvariantCulture);
        var process = Process.Start(start) ?? throw new IOException($"could not start {command[0]}");
        if (start.RedirectStandardOutput)
        {
            var log = new StreamWriter(plan.LogFile(cell.Index), append: true) { AutoFlush = true };
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }
        var worker = new Worker { Cell = cell, Process = process, Slot = slot, Started = DateTime.UtcNow, EpochsAtStart = state.EpochsDone, Epochs = state.Epochs, Done = state.EpochsDone };
        return worker;
    }

    private void Refresh(Worker w)
    {
        try
        {
            var run = new RunDirectory(plan.RunPath(w.Cell));
            var metrics = run.ReadMetrics();
            if (metrics.Count > w.Done) _epochsThisSession += metrics.Count - w.Done;
            w.Done = Math.Max(w.Done, metrics.Count);
            if (metrics.Count > 0 && double.IsFinite(metrics[^1].ValidationAccuracy)) w.ValidationAccuracy = metrics[^1].ValidationAccuracy;
            if (w.Epochs == 0) w.Epochs = run.ReadConfig().Options.Epochs;
        }
        catch (Exception e) when (e is IOException or Engine.InputException)
        {
            // Mid-write or not yet written: the next look sees it.
        }
    }

    private void Reap(Worker w, List<string> failures)
    {
        Refresh(w);
        int code = w.Process.ExitCode;
        var state = CellStates.Of(plan, w.Cell);
        string took = CliValues.Duration(DateTime.UtcNow - w.Started);
        w.Process.Dispose();
        if (state.Phase == CellPhase.Finished)
        {
            _finished++;
            Event($"finished cell {w.Cell.Index} {w.Cell.Directory} in {took}" + (state.Accuracy is double a ? $": test accuracy {CliValues.Percent(a)}%" : ""));
        }
        else if (CellStates.IsInterruption(code))
        {
            _interrupted++;
            Event($"interrupted cell {w.Cell.Index} {w.Cell.Directory} after epoch {state.EpochsDone} of {state.Epochs} (checkpoint saved)");
        }
        else if (state.Phase == CellPhase.Running)
        {
            _elsewhere++;
            Event($"cell {w.Cell.Index} {w.Cell.Directory} is being trained by another process ({state.Detail})");
        }
        else
        {
            _failed++;
            string why = state.LastAttempt?.Message ?? LastErrorLine(plan.LogFile(w.Cell.Index)) ?? "no message";
            failures.Add($"cell {w.Cell.Index} ({w.Cell.Directory}) failed with exit {code}: {why} (log: {plan.LogFile(w.Cell.Index)})");
            Event($"failed cell {w.Cell.Index} {w.Cell.Directory} (exit {code})");
        }
    }

    private static string? LastErrorLine(string log)
    {
        try
        {
            return File.Exists(log) ? File.ReadLines(log).LastOrDefault(l => l.StartsWith("error:", StringComparison.Ordinal)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private string Counts() =>
        $"{_finished + _alreadyDone} done, {_running.Count} running, {_failed} failed, {_queue.Count} pending";

    /// <summary>Remaining time from the sweep's own pace: epochs finished per second so far, over the epochs left.</summary>
    private string Eta(int remainingEpochs)
    {
        if (remainingEpochs == 0) return "";
        if (_epochsThisSession == 0) return "ETA after the first epoch";
        double seconds = remainingEpochs * _clock.Elapsed.TotalSeconds / _epochsThisSession;
        return "ETA " + CliValues.Duration(TimeSpan.FromSeconds(seconds));
    }

    private void Event(string text)
    {
        _events.Add($"{DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {text}");
        if (console.Profile.Capabilities.Interactive && console.Profile.Capabilities.Ansi) return;
        string eta = Eta(_remainingEpochs);
        console.Profile.Out.Writer.WriteLine($"[{Counts()}{(eta.Length > 0 ? "; " + eta : "")}] {text}");
        console.Profile.Out.Writer.Flush();
    }

    private void Note(string text)
    {
        if (console.Profile.Capabilities.Interactive) console.MarkupLine(Markup.Escape(text));
        else console.Profile.Out.Writer.WriteLine(text);
    }

    private IRenderable Screen(List<Worker> running, int pending, int remainingEpochs)
    {
        var table = new Table().Border(TableBorder.Simple).Expand()
            .AddColumn("cell").AddColumn("run").AddColumn("device").AddColumn(new TableColumn("epoch").RightAligned())
            .AddColumn(new TableColumn("val_acc").RightAligned()).AddColumn(new TableColumn("time").RightAligned());
        foreach (var w in running)
            table.AddRow(w.Cell.Index.ToString(CultureInfo.InvariantCulture), Markup.Escape(w.Cell.Directory), Markup.Escape(w.Slot.Device),
                $"{w.Done}/{w.Epochs}", w.ValidationAccuracy is double v ? CliValues.Percent(v, 1) + "%" : "-", CliValues.Duration(DateTime.UtcNow - w.Started));
        var header = new Markup(Markup.Escape($"{Counts()}   {Eta(remainingEpochs)}   ({CliValues.Duration(_clock.Elapsed)})"));
        var recent = new Rows(_events.TakeLast(5).Select(e => (IRenderable)new Text(e, new Style(Color.Grey))).ToArray());
        return new Rows(header, table, recent);
    }

    private const int SigInt = 2, SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static void Signal(Process process, int signal)
    {
        try
        {
            if (OperatingSystem.IsWindows()) process.Kill();
            else if (!process.HasExited) Kill(process.Id, signal);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
