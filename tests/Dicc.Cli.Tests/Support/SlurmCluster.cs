using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Dicc.Cli.Tests.Support;

/// <summary>
/// A single-node Slurm cluster on this machine, from a temporary folder: MUNGE with a key and socket of its own,
/// MariaDB and slurmdbd for Slurm's accounting (what <c>sacct</c> reads), then slurmctld and slurmd under a
/// generated slurm.conf (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, SelectType=select/cons_tres, one
/// node with this machine's cores), each on a free port. Every daemon runs as root (Debian 12's packages:
/// slurmctld, slurmd, slurm-client, slurmdbd, munge, mariadb-server-core, mariadb-client-core, which
/// scripts/install-prerequisites.sh installs). Dispose cancels the cluster's jobs and stops exactly the daemons it
/// started (by the process ids they wrote), then deletes the folder.
/// </summary>
internal sealed class SlurmCluster : IDisposable
{
    private static readonly string[] Tools =
    [
        "munged", "munge", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scancel", "sinfo",
    ];

    private readonly string _folder;
    private Process? _mariadb;
    private readonly List<string> _pidFiles = [];

    private SlurmCluster(string folder)
    {
        _folder = folder;
        Directory.CreateDirectory(folder);
    }

    /// <summary>slurm.conf: what SLURM_CONF must name for the Slurm commands to reach this cluster.</summary>
    public string ConfigFile => Path.Combine(_folder, "slurm.conf");

    /// <summary>The same cluster's configuration without accounting (sacct then answers that accounting is disabled).</summary>
    public string ConfigFileWithoutAccounting => Path.Combine(_folder, "no-accounting", "slurm.conf");

    /// <summary>Why the cluster cannot run here, or null when it can.</summary>
    public static string? WhyNot()
    {
        if (!OperatingSystem.IsLinux()) return "a Slurm cluster needs Linux";
        if (geteuid() != 0) return "the single-node Slurm cluster runs its daemons as root; run the tests as root (CI does)";
        var missing = Tools.Where(t => Find(t) is null).ToList();
        return missing.Count == 0 ? null
            : $"not installed: {string.Join(", ", missing)} (scripts/install-prerequisites.sh installs Slurm, MUNGE and MariaDB)";
    }

    [DllImport("libc")]
    private static extern uint geteuid();

    private static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/bin"])
        .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    private static string Tool(string name) => Find(name) ?? throw new InvalidOperationException($"{name} is not installed");

    /// <summary>Starts the daemons and waits until the node is idle; on failure stops what it started and throws with the daemons' logs.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public static SlurmCluster Start(string folder)
    {
        var cluster = new SlurmCluster(folder);
        try
        {
            cluster.StartDaemons();
            return cluster;
        }
        catch (Exception e)
        {
            string logs = cluster.Logs();
            cluster.Dispose();
            throw new InvalidOperationException($"the Slurm cluster did not start: {e.Message}\n{logs}", e);
        }
    }

    private string P(string name) => Path.Combine(_folder, name);

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private void StartDaemons()
    {
        string host = Environment.MachineName;
        int ctld = FreePort(), slurmd = FreePort(), dbd = FreePort(), db = FreePort();
        foreach (var d in new[] { "state", "spool", "db" }) Directory.CreateDirectory(P(d));

        // MUNGE: a key of our own, its own socket; munged forks into the background and writes its pid.
        File.WriteAllBytes(P("munge.key"), RandomNumberGenerator(1024));
        File.SetUnixFileMode(P("munge.key"), UnixFileMode.UserRead);
        Run(Tool("munged"), "--force", $"--key-file={P("munge.key")}", $"--socket={P("munge.socket")}", $"--pid-file={P("munged.pid")}",
            $"--log-file={P("munged.log")}", $"--seed-file={P("munged.seed")}");
        _pidFiles.Add(P("munged.pid"));
        WaitFor(() => File.Exists(P("munge.socket")), "munged's socket", TimeSpan.FromSeconds(30));

        // MariaDB for slurmdbd, in the foreground as our child, on a port of its own and no grant tables (local use only).
        Run(Tool("mariadb-install-db"), "--no-defaults", $"--datadir={P("db")}", "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db");
        var start = new ProcessStartInfo(Tool("mariadbd")) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
                 {
                     "--no-defaults", $"--datadir={P("db")}", $"--socket={P("mysql.sock")}", $"--port={db}", "--bind-address=127.0.0.1", "--user=root",
                     $"--pid-file={P("mariadb.pid")}", $"--log-error={P("mariadb.log")}", "--skip-grant-tables", "--innodb-buffer-pool-size=16M", "--skip-log-bin",
                 })
            start.ArgumentList.Add(a);
        _mariadb = Process.Start(start)!;
        _mariadb.StandardOutput.ReadToEndAsync();
        _mariadb.StandardError.ReadToEndAsync();
        WaitFor(() => Accepts(db) || _mariadb.HasExited, "MariaDB", TimeSpan.FromSeconds(60));
        if (_mariadb.HasExited) throw new InvalidOperationException($"mariadbd exited with {_mariadb.ExitCode}");

        string common = $"AuthType=auth/munge\nAuthInfo=socket={P("munge.socket")}\n";
        File.WriteAllText(P("slurmdbd.conf"), common +
            $"DbdHost={host}\nDbdAddr=127.0.0.1\nDbdPort={dbd}\nSlurmUser=root\nPidFile={P("slurmdbd.pid")}\nLogFile={P("slurmdbd.log")}\n" +
            $"StorageType=accounting_storage/mysql\nStorageHost=127.0.0.1\nStoragePort={db}\nStorageUser=root\nStorageLoc=dicc_test_accounting\n");
        File.SetUnixFileMode(P("slurmdbd.conf"), UnixFileMode.UserRead | UnixFileMode.UserWrite); // slurmdbd refuses a readable one
        string conf = common +
            $"ClusterName=dicctest\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser=root\nSlurmdUser=root\n" +
            $"SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nCredType=cred/munge\n" +
            $"StateSaveLocation={P("state")}\nSlurmdSpoolDir={P("spool")}\n" +
            $"SlurmctldPidFile={P("slurmctld.pid")}\nSlurmdPidFile={P("slurmd.pid")}\nSlurmctldLogFile={P("slurmctld.log")}\nSlurmdLogFile={P("slurmd.log")}\n" +
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n" +
            "SchedulerType=sched/builtin\nReturnToService=2\nMpiDefault=none\nJobAcctGatherType=jobacct_gather/none\nKillWait=10\n" +
            "ACCOUNTING\n" +
            $"NodeName={host} NodeAddr=127.0.0.1 CPUs={Environment.ProcessorCount} State=UNKNOWN\n" +
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n";
        // slurmctld reaches slurmdbd through the accounting MUNGE socket, named by AccountingStoragePass.
        File.WriteAllText(ConfigFile, conf.Replace("ACCOUNTING",
            $"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=127.0.0.1\nAccountingStoragePort={dbd}\nAccountingStoragePass={P("munge.socket")}"));
        Directory.CreateDirectory(Path.GetDirectoryName(ConfigFileWithoutAccounting)!);
        File.WriteAllText(ConfigFileWithoutAccounting, conf.Replace("ACCOUNTING", "AccountingStorageType=accounting_storage/none"));

        // slurmdbd reads slurmdbd.conf from slurm.conf's folder; each daemon forks into the background and writes its pid.
        Run(Tool("slurmdbd"));
        _pidFiles.Add(P("slurmdbd.pid"));
        WaitFor(() => Accepts(dbd), "slurmdbd", TimeSpan.FromSeconds(60));
        Run(Tool("slurmctld"), "-f", ConfigFile);
        _pidFiles.Add(P("slurmctld.pid"));
        Run(Tool("slurmd"), "-f", ConfigFile);
        _pidFiles.Add(P("slurmd.pid"));
        WaitFor(() => Command("sinfo", "-h", "-o", "%T").Output.Trim() == "idle", "the node to be idle (sinfo)", TimeSpan.FromSeconds(90));
    }

    private static byte[] RandomNumberGenerator(int n) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(n);

    /// <summary>Runs a Slurm command against this cluster.</summary>
    public (int Code, string Output, string Error) Command(string tool, params string[] arguments) => Run(Tool(tool), arguments, check: false);

    private (int Code, string Output, string Error) Run(string program, params string[] arguments) => Run(program, arguments, check: true);

    private (int Code, string Output, string Error) Run(string program, string[] arguments, bool check)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.Environment["SLURM_CONF"] = ConfigFile;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) throw new TimeoutException($"{program} did not finish in 2 minutes");
        if (check && process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {output.Result} {error.Result}");
        return (process.ExitCode, output.Result, error.Result);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            return client.ConnectAsync(IPAddress.Loopback, port).Wait(TimeSpan.FromSeconds(1)) && client.Connected;
        }
        catch (AggregateException)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static void WaitFor(Func<bool> condition, string what, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"waited {timeout.TotalSeconds:0} s for {what}");
            Thread.Sleep(200);
        }
    }

    /// <summary>The daemons' logs (the last lines of each), for a failure's message.</summary>
    public string Logs()
    {
        var s = new StringBuilder();
        foreach (var log in new[] { "munged.log", "mariadb.log", "slurmdbd.log", "slurmctld.log", "slurmd.log" })
        {
            if (!File.Exists(P(log))) continue;
            s.Append("--- ").Append(log).Append('\n');
            foreach (var line in File.ReadLines(P(log)).TakeLast(15)) s.Append(line).Append('\n');
        }
        return s.ToString();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>Cancels the cluster's jobs, then stops the daemons it started (newest first) and MariaDB, and deletes the folder.</summary>
    public void Dispose()
    {
        if (_pidFiles.Contains(P("slurmd.pid")))
        {
            try
            {
                Command("scancel", "--full", "-u", "root");
                WaitFor(() => Command("squeue", "-h").Output.Trim().Length == 0, "the queue to empty", TimeSpan.FromSeconds(60));
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                // The daemons are stopped below either way.
            }
        }
        for (int i = _pidFiles.Count - 1; i >= 0; i--) Stop(_pidFiles[i], Path.GetFileNameWithoutExtension(_pidFiles[i]));
        if (_mariadb is { HasExited: false })
        {
            kill(_mariadb.Id, 15);
            if (!_mariadb.WaitForExit(TimeSpan.FromSeconds(30))) _mariadb.Kill();
        }
        _mariadb?.Dispose();
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>SIGTERM to the daemon whose pid the file holds (if that process is still the daemon <paramref name="name"/>), SIGKILL after 20 s.</summary>
    private static void Stop(string pidFile, string name)
    {
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) return;
        bool Alive()
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/comm").Trim() == name && !File.ReadAllText($"/proc/{pid}/stat").Split(") ", 2)[^1].StartsWith('Z');
            }
            catch (IOException)
            {
                return false; // gone
            }
        }
        if (!Alive()) return;
        kill(pid, 15);
        var clock = Stopwatch.StartNew();
        while (Alive() && clock.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(100);
        if (Alive()) kill(pid, 9);
    }
}
