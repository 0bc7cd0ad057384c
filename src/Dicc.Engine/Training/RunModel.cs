using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Models;

namespace Dicc.Engine.Training;

/// <summary>Rebuilds a trained model from its run directory (config.json + a checkpoint), for evaluation and prediction.</summary>
public static class RunModel
{
    /// <summary>Builds the model the run's config.json describes on <paramref name="backend"/> and loads a checkpoint into it.</summary>
    /// <param name="backend">Where to build the model.</param>
    /// <param name="run">The run directory.</param>
    /// <param name="checkpoint">"best" (selected on validation, the default), "last", or the path of a checkpoint file
    /// written by this run (e.g. a copy of <c>checkpoints/best.safetensors</c>).</param>
    public static (ExpressionModel Model, RunConfig Config) Load(Backend backend, RunDirectory run, string checkpoint = "best")
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(run);
        var config = run.ReadConfig();
        string path = CheckpointFile(run, checkpoint);
        var model = ModelFactory.Create(backend, config.Options, config.Dataset.ClassNames.Length, config.Dataset.TrainCounts,
            config.SubclassCounts);
        model.Load(new CheckpointReader(path));
        return (model, config);
    }

    /// <summary>
    /// The checkpoint file <paramref name="checkpoint"/> names in <paramref name="run"/> ("best", "last" or a file path);
    /// throws an <see cref="InputException"/> (parameter "checkpoint") when it does not exist.
    /// </summary>
    public static string CheckpointFile(RunDirectory run, string checkpoint)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(checkpoint);
        string path = checkpoint.Trim().ToLowerInvariant() switch
        {
            "best" => run.BestCheckpoint,
            "last" => run.LastCheckpoint,
            _ when checkpoint.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) => Path.GetFullPath(checkpoint),
            _ => throw new InputException($"checkpoint must be best, last or a .safetensors file, got '{checkpoint}'.") { Parameter = "checkpoint" },
        };
        if (!File.Exists(path))
            throw new InputException(checkpoint.Trim().ToLowerInvariant() is "best" or "last"
                ? $"checkpoint {checkpoint.Trim().ToLowerInvariant()}: {path} does not exist (has the run finished an epoch?)."
                : $"checkpoint {path} does not exist.") { Parameter = "checkpoint" };
        return path;
    }

    /// <summary>
    /// Where a trained model is: <paramref name="path"/> is a run directory (then <paramref name="checkpoint"/>, "best" or
    /// "last", picks its checkpoint) or a checkpoint file (<c>.safetensors</c>) whose run's config.json is beside it or one
    /// folder up (the layout <c>RUN/checkpoints/NAME.safetensors</c>). Throws an <see cref="InputException"/> naming the
    /// path when there is no model there.
    /// </summary>
    /// <returns>The run directory and the checkpoint file.</returns>
    public static (RunDirectory Run, string Checkpoint) Locate(string path, string checkpoint = "best")
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            var run = new RunDirectory(path);
            if (!File.Exists(run.ConfigFile))
                throw new InputException($"path {run.Path}: not a run directory (no config.json).") { Parameter = "path" };
            return (run, CheckpointFile(run, checkpoint));
        }
        if (File.Exists(path))
        {
            string file = Path.GetFullPath(path);
            if (!file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new InputException($"path {file}: neither a run directory nor a .safetensors checkpoint.") { Parameter = "path" };
            string folder = Path.GetDirectoryName(file)!;
            foreach (string candidate in new[] { folder, Path.GetDirectoryName(folder) }.OfType<string>())
                if (File.Exists(Path.Combine(candidate, "config.json")))
                    return (new RunDirectory(candidate), file);
            throw new InputException($"path {file}: no config.json beside the checkpoint or one folder up; a checkpoint is read with its run's config.json.")
                { Parameter = "path" };
        }
        throw new InputException($"path {path}: no such run directory or checkpoint file.") { Parameter = "path" };
    }
}
