using System.Runtime.InteropServices;

namespace Dicc.Cli.Infrastructure;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM (what schedulers and <c>docker stop</c> send) as one cancellation: the first
/// signal asks the work to stop at the next safe point (a training run saves its checkpoint), a second one
/// ends the process at once. <see cref="ExitCode"/> is the shell's convention for the signal: 128 + its number.
/// </summary>
public sealed class StopSignals : IDisposable
{
    /// <summary>Exit code after Ctrl-C (128 + SIGINT).</summary>
    public const int InterruptExitCode = 130;

    /// <summary>Exit code after SIGTERM (128 + 15).</summary>
    public const int TerminateExitCode = 143;

    private readonly CancellationTokenSource _source;
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _signals;

    public StopSignals(CancellationToken outer = default)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        Register(PosixSignal.SIGINT, InterruptExitCode);
        Register(PosixSignal.SIGTERM, TerminateExitCode);
    }

    public CancellationToken Token => _source.Token;

    /// <summary>130 after Ctrl-C, 143 after SIGTERM (also when no signal came: the work was cancelled otherwise).</summary>
    public int ExitCode { get; private set; } = InterruptExitCode;

    private void Register(PosixSignal signal, int exitCode)
    {
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                if (Interlocked.Increment(ref _signals) > 1) return; // the second signal: the default, which ends the process
                context.Cancel = true;
                ExitCode = exitCode;
                _source.Cancel();
            }));
        }
        catch (PlatformNotSupportedException)
        {
            // Not every signal exists everywhere; Ctrl-C does.
        }
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _source.Dispose();
    }
}
