using Dicc.Engine.Backends;
using Dicc.Engine.Checkpoints;
using Dicc.Engine.Models;

namespace Dicc.Engine.Training;

/// <summary>Rebuilds a trained model from its run directory (config.json + a checkpoint), for evaluation and prediction.</summary>
public static class RunModel
{
    /// <param name="backend">Where to build the model.</param>
    /// <param name="run">The run directory.</param>
    /// <param name="checkpoint">"best" (selected on validation, the default) or "last".</param>
    public static (ExpressionModel Model, RunConfig Config) Load(Backend backend, RunDirectory run, string checkpoint = "best")
    {
        var config = run.ReadConfig();
        string path = checkpoint.Trim().ToLowerInvariant() switch
        {
            "best" => run.BestCheckpoint,
            "last" => run.LastCheckpoint,
            _ => throw new InputException($"checkpoint must be best or last, got '{checkpoint}'.") { Parameter = "checkpoint" },
        };
        if (!File.Exists(path)) throw new InputException($"{path}: not found; has the run finished an epoch?");
        var model = ModelFactory.Create(backend, config.Options, config.Dataset.ClassNames.Length, config.Dataset.TrainCounts,
            config.SubclassCounts);
        model.Load(new CheckpointReader(path));
        return (model, config);
    }
}
