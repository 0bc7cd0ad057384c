using Dicc.Engine.Backends;
using Dicc.Engine.Randomness;
using Dicc.Engine.Tensors;

namespace Dicc.Engine.Layers;

/// <summary>
/// Parameters and their gradients in two flat arenas (llm.c style): every parameter is a view at a
/// 64-byte aligned offset, so the optimiser (and a checkpoint, and a device upload) covers them all at once.
/// Padding between views stays zero and is left at zero by SGD.
/// </summary>
public sealed class ParameterSet
{
    private const int Alignment = 16; // floats

    /// <summary>Gives <paramref name="parameters"/> memory on <paramref name="backend"/>: one allocation for all values and one for all gradients, each parameter a 64-byte aligned view.</summary>
    public ParameterSet(Backend backend, IEnumerable<Parameter> parameters)
    {
        Backend = backend;
        Parameters = parameters.ToArray();
        var names = new HashSet<string>();
        foreach (var p in Parameters)
            if (!names.Add(p.Name)) throw new ArgumentException($"Two parameters are named '{p.Name}'.");
        long offset = 0;
        var offsets = new long[Parameters.Count];
        for (int i = 0; i < Parameters.Count; i++)
        {
            offsets[i] = offset;
            offset += (Parameters[i].Shape.ElementCount + Alignment - 1) / Alignment * Alignment;
        }
        Length = Math.Max(offset, Alignment);
        Values = new Tensor(backend.Allocate(Length * sizeof(float)), new Shape(checked((int)Length)));
        Grads = new Tensor(backend.Allocate(Length * sizeof(float)), new Shape(checked((int)Length)));
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (p.IsBound) throw new InvalidOperationException($"Parameter '{p.Name}' already belongs to a parameter set.");
            p.Bind(new Tensor(Values.Storage, p.Shape, DType.Float32, offsets[i]),
                   new Tensor(Grads.Storage, p.Shape, DType.Float32, offsets[i]));
        }
        Count = Parameters.Sum(p => p.Shape.ElementCount);
    }

    /// <summary>The backend the arenas live on.</summary>
    public Backend Backend { get; }
    /// <summary>The parameters in order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>All values, as one flat tensor (padding included).</summary>
    public Tensor Values { get; }

    /// <summary>All gradients, as one flat tensor aligned with <see cref="Values"/>.</summary>
    public Tensor Grads { get; }

    /// <summary>Arena length in floats, padding included.</summary>
    public long Length { get; }

    /// <summary>Number of trainable scalars (padding excluded).</summary>
    public long Count { get; }

    /// <summary>Draws every parameter's initial values in declaration order from one seeded stream.</summary>
    public void Initialize(RandomStream random)
    {
        foreach (var p in Parameters)
        {
            var values = new float[p.Shape.ElementCount];
            p.DrawInitialValues(random, values);
            Backend.CopyIn<float>(p.Value, values);
        }
    }

    /// <summary>The parameter with this full name.</summary>
    public Parameter this[string name] =>
        Parameters.FirstOrDefault(p => p.Name == name) ?? throw new KeyNotFoundException($"No parameter named '{name}'.");
}
