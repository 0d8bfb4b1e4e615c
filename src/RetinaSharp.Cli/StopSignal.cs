// Ctrl-C (SIGINT) and SIGTERM (kill, docker stop, systemd) during training: the first one asks the trainer to stop
// after the current step and save a checkpoint; a second one ends the process at once (the last checkpoint on disk
// is complete). The exit code follows the shell convention 128 + signal number: 130 for SIGINT, 143 for SIGTERM.
using System.Runtime.InteropServices;

namespace RetinaSharp.Cli;

/// <summary>Turns SIGINT and SIGTERM into a cancellation while armed (<see cref="Arm"/> .. <see cref="Disarm"/>).</summary>
internal sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly Action<string>? _notify;

    /// <summary>Creates an unarmed instance; <paramref name="notify"/> receives one line when a signal stops the run.</summary>
    public StopSignal(Action<string>? notify = null) => _notify = notify;

    /// <summary>Cancelled by the first SIGINT or SIGTERM received while armed.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The signal that stopped the run, or null.</summary>
    public PosixSignal? Signal { get; private set; }

    /// <summary>128 + the signal number for the signal received (130 SIGINT, 143 SIGTERM), or null when none was.</summary>
    public int? ExitCode => Signal switch { PosixSignal.SIGINT => 130, PosixSignal.SIGTERM => 143, _ => null };

    /// <summary>Registers the SIGINT and SIGTERM handlers (idempotent).</summary>
    public void Arm()
    {
        if (_registrations.Count > 0) return;
        foreach (var s in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            _registrations.Add(PosixSignalRegistration.Create(s, c => c.Cancel = OnSignal(c.Signal)));
    }

    /// <summary>
    /// Handles one signal: the first cancels <see cref="Token"/> and returns true (the default action, ending the process,
    /// is suppressed); later ones return false, so the process ends as usual.
    /// </summary>
    internal bool OnSignal(PosixSignal signal)
    {
        if (Signal != null) return false;
        Signal = signal;
        _cts.Cancel();
        _notify?.Invoke($"{(signal == PosixSignal.SIGINT ? "Ctrl-C" : signal.ToString())}: finishing the current step and saving a checkpoint (send it again to stop at once)...");
        return true;
    }

    /// <summary>Unregisters the handlers: signals act as usual again.</summary>
    public void Disarm()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Disarm();
        _cts.Dispose();
    }
}
